/**
 * Lifecycle events (issue 4 §6): what happened to a device connection, in the shape AWS IoT publishes on
 * `$aws/events/presence/connected/{clientId}` and `$aws/events/presence/disconnected/{clientId}`.
 */

/** Why a connection ended (AWS `disconnectReason` values that Gatehouse can tell apart). */
export type DisconnectReason =
  | 'CLIENT_INITIATED_DISCONNECT'
  | 'CONNECTION_LOST'
  | 'DUPLICATE_CLIENTID'
  | 'MQTT_KEEP_ALIVE_TIMEOUT'
  | 'AUTHORIZATION_FAILURE'
  | 'CLIENT_ERROR'
  | 'THROTTLED'
  | 'SERVER_INITIATED_DISCONNECT';

/** A device connected (CONNACK 0 sent) or its connection ended. */
export interface PresenceEvent {
  readonly kind: 'presence';
  /** The tenant whose broker the device is connected to; events never cross tenants. */
  readonly tenantId: string;
  readonly eventType: 'connected' | 'disconnected';
  readonly clientId: string;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  /** The certificate id the device authenticated with. */
  readonly principalIdentifier: string;
  /** A random id shared by the connected and disconnected events of one connection. */
  readonly sessionIdentifier: string;
  readonly ipAddress?: string | undefined;
  /** Only on `disconnected`. */
  readonly disconnectReason?: DisconnectReason | undefined;
  /** Only on `disconnected`. */
  readonly clientInitiatedDisconnect?: boolean | undefined;
}

/**
 * An event of a provisioning flow (JITR registration, JITP outcome, …): published on its own topic, e.g.
 * `$aws/events/certificates/registered/<caCertificateId>`, and sent to webhooks subscribed to its `eventType`.
 */
export interface ProvisioningEvent {
  readonly kind: 'provisioning';
  readonly tenantId: string;
  /** e.g. `certificate.registered`, `jitp.provisioned`, `jitp.failed`, `auto-registration.refused`. */
  readonly eventType: string;
  readonly topic: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** Every event the bus carries. */
export type LifecycleEvent = PresenceEvent | ProvisioningEvent;

/** The type name webhooks subscribe to: `presence.connected`, `presence.disconnected`, or a provisioning event type. */
export function eventTypeOf(event: LifecycleEvent): string {
  return event.kind === 'presence' ? `presence.${event.eventType}` : event.eventType;
}

/** The MQTT topic an event is published on: `$aws/events/presence/{connected|disconnected}/{clientId}`, or the provisioning event's topic. */
export function topicOfEvent(event: LifecycleEvent): string {
  if (event.kind === 'provisioning') return event.topic;
  return `$aws/events/presence/${event.eventType}/${event.clientId}`;
}

/** The JSON body of an event as AWS publishes it (without Gatehouse-internal fields such as the tenant). */
export function payloadOfEvent(event: LifecycleEvent): Record<string, unknown> {
  if (event.kind === 'provisioning') return { ...event.payload };
  const body: Record<string, unknown> = {
    clientId: event.clientId,
    timestamp: event.timestamp,
    eventType: event.eventType,
    sessionIdentifier: event.sessionIdentifier,
    principalIdentifier: event.principalIdentifier,
  };
  if (event.ipAddress !== undefined) body['ipAddress'] = event.ipAddress;
  if (event.disconnectReason !== undefined) body['disconnectReason'] = event.disconnectReason;
  if (event.clientInitiatedDisconnect !== undefined) body['clientInitiatedDisconnect'] = event.clientInitiatedDisconnect;
  return body;
}
