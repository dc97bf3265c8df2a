/**
 * The Gatehouse device SDK and simulator: every flow from the device's side, over the network only
 * (it never imports server code). Exported as the package entry point `gatehouse/device`.
 */
export { DeviceErrors } from './errors.ts';
// what a caller narrows a caught error with (`isGatehouseError(e)`, then `e.code`, `e.details`)
export { GatehouseError, isGatehouseError } from '../errors/index.ts';
export { checkDeviceCredentials, connectDevice, parseEndpoint, readCredentialFiles, readDeviceFile, type DeviceEndpoint, type DeviceCredentials } from './mqtt-connection.ts';
export { FleetProvisioningClient, type PayloadFormat, type RejectedPayload } from './fleet-provisioning-client.ts';
export { provisionByClaim, provisionByTrustedUser, saveDeviceCredentials, withRetry, type ProvisionByClaimOptions, type ProvisionedDevice, type RetryInfo } from './provision.ts';
