/**
 * The events the provisioning flows emit (JITR registration, JITP outcomes). `src/events` delivers them to the
 * broker and to webhooks; provisioning only knows this interface (persistence and delivery are not its business).
 */
export interface ProvisioningEventSink {
  /** Publishes `payload` on MQTT `topic` of the tenant and to webhooks subscribed to `eventType`. */
  emit(tenantId: string, eventType: string, topic: string, payload: Record<string, unknown>): void;
}

/** A sink that drops everything (tests, CLI-only processes). */
export const NO_EVENTS: ProvisioningEventSink = { emit: () => undefined };
