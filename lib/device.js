// `gatehouse/device` for plain Node.js: the device SDK (src/device) is TypeScript, run through tsx as the CLI is
// (bin/gatehouse.js), so a device maker's JavaScript can `import { provisionByClaim } from 'gatehouse/device'` without a
// TypeScript loader of its own. tsx's `tsImport` loads the sources through a loader scoped to this import: it does not
// register TypeScript for the rest of the process. TypeScript callers get declarations emitted from src/device/index.ts
// (lib/types, the `types` condition of the package's exports; scripts/device-types.ts). The names below are those of
// src/device/index.ts; a test keeps them equal.
import { tsImport } from 'tsx/esm/api';

const sdk = await tsImport('../src/device/index.ts', import.meta.url);

export const {
  DeviceErrors,
  GatehouseError,
  isGatehouseError,
  checkDeviceCredentials,
  connectDevice,
  parseEndpoint,
  readCredentialFiles,
  readDeviceFile,
  FleetProvisioningClient,
  provisionByClaim,
  provisionByTrustedUser,
  saveDeviceCredentials,
  withRetry,
} = sdk;
