import { defineErrors } from '../errors/index.ts';

/** Error codes of the device SDK (what a device-side caller sees). */
export const DeviceErrors = defineErrors({
  DEVICE_CONNECT_FAILED: { kind: 'unavailable', description: 'The device could not connect to the endpoint (TLS, network, or CONNACK refusal).' },
  DEVICE_REQUEST_TIMEOUT: { kind: 'unavailable', description: 'No /accepted or /rejected answer arrived in time.' },
  DEVICE_REQUEST_REJECTED: { kind: 'invalid', description: 'The service answered on /rejected (details: statusCode, errorCode, errorMessage).' },
  DEVICE_PUBLISH_REFUSED: { kind: 'forbidden', description: 'The endpoint closed the connection instead of acknowledging a publish (a publish the policy denies disconnects the device, as on AWS IoT).' },
  DEVICE_OPTIONS_INVALID: { kind: 'invalid', description: 'An option given to the device SDK is malformed, never retried: an empty client id (also the CSR common name), a template name outside 1-36 of 0-9 A-Z a-z _ -, an endpoint that is not host:port (or not an object), a port outside 1-65535, a root CA that is not a PEM certificate, attempts below 1, a keyMode other than csr or server, a format other than json or cbor, an empty outDir.' },
  DEVICE_REGISTRATION_UNCONFIRMED: { kind: 'unavailable', description: "RegisterThing's answer was lost and its retry found the ownership token already used: the device is most likely registered (details.certificateId); its identity is saved in outDir when one was given." },
  DEVICE_CREDENTIALS_INVALID: { kind: 'invalid', description: 'The credentials directory or files are missing or unreadable.' },
});
