/**
 * `src/gateway` — the device endpoint (issue 4): MQTT 3.1.1 over mutual TLS with per-tenant SNI trust stores,
 * authentication by certificate, authorization by IoT policy, limits and presence events. The composition root
 * builds one {@link DeviceGateway}, listens, and registers it as a `ChangeListener` of the control plane.
 */
export { DeviceGateway, createDeviceGateway, type DeviceGatewayOptions, type EnforcementReason } from './device-gateway.ts';
export { DeviceTlsListener, certificateIdOfDer, type PeerIdentity, type TlsRefusalReason, type DeviceTlsListenerOptions } from './device-tls.ts';
export {
  CertificateAuthenticator,
  CONNACK_CODE_OF_REFUSAL,
  type CertificateAuthenticatorOptions,
  type AuthenticationResult,
  type RefusalReason,
  type ConnackRefusalCode,
  type UnknownCertificateHandler,
  type UnknownCertificateRequest,
  type UnknownCertificateOutcome,
} from './authenticator.ts';
export {
  PolicyEnforcer,
  DEFAULT_POLICY_REGION,
  accountIdOfTenant,
  policyCertificateOf,
  type PolicyEnforcerOptions,
  type PrincipalPolicies,
  type ConnectionPolicy,
} from './policy-enforcer.ts';
export { DEFAULT_GATEWAY_LIMITS, PacketSizeGuard, checkTopicLimits, type GatewayLimits } from './gateway-limits.ts';
export { FleetProvisioningRouter, rejectionOf, type DeviceApiRouter, type DeviceApiRequest, type DeviceApiResponse } from './fleet-provisioning-router.ts';
export { redisBrokerBackend, type BrokerBackend, type BrokerBackendFactory } from './broker-backend.ts';
export { ConnectCache, type ConnectCacheOptions } from './connect-cache.ts';
