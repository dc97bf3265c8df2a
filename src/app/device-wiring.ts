import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Registry as MetricsRegistry } from 'prom-client';
import { WebhookDispatcher } from '../events/index.ts';
import type { EventBus, WebhookTarget } from '../events/index.ts';
import type { UnknownCertificateHandler } from '../gateway/index.ts';
import { AutoRegistration } from '../provisioning/index.ts';
import type { ControlPlane, ProvisioningEventSink } from '../provisioning/index.ts';
import { insertDeadLetter, listAllWebhookTargets } from '../registry/index.ts';
import type { Store } from '../store/index.ts';

/** Provisioning events go onto the bus (broker + webhooks) and are counted by type (`/metrics`). */
export function createProvisioningEventSink(bus: EventBus, metrics: MetricsRegistry): ProvisioningEventSink {
  const outcomes = new Counter({ name: 'gatehouse_provisioning_events_total', help: 'Provisioning outcomes by event type (jitp.provisioned, jitp.failed, certificate.registered, auto-registration.refused, …)', labelNames: ['event'], registers: [metrics] });
  return {
    emit(tenantId, eventType, topic, payload) {
      outcomes.inc({ event: eventType });
      bus.publish({ kind: 'provisioning', tenantId, eventType, topic, payload });
    },
  };
}

/**
 * Webhook delivery with targets read from the database (reloaded when the API changes them) and dead letters
 * written to the `webhook_dead_letters` table.
 */
export async function startWebhooks(store: Store, bus: EventBus, controlPlane: ControlPlane, logger: Logger): Promise<() => void> {
  let targets: readonly WebhookTarget[] = [];
  const reload = async (): Promise<void> => {
    targets = (await listAllWebhookTargets(store.db)).map((t) => ({ id: t.id, url: t.url, secret: t.secret, tenantId: t.tenantId, events: t.events }));
  };
  await reload();
  controlPlane.addListener({ webhooksChanged: () => void reload().catch((error: unknown) => logger.error({ err: error }, 'webhook reload failed')) });
  const dispatcher = new WebhookDispatcher({
    targets: () => targets,
    deadLetters: { record: (l) => insertDeadLetter(store.db, { deliveryId: l.deliveryId, webhookId: l.targetId, url: l.url, body: l.body, attempts: l.attempts, lastError: l.lastError, failedAt: l.failedAt }) },
    onError: (error) => logger.error({ err: error }, 'dead letter not recorded'),
  });
  const detach = dispatcher.attach(bus);
  return () => {
    detach();
    dispatcher.close();
  };
}

/** Adapts JITP/JITR (provisioning) to the gateway's unknown-certificate extension point. */
export function createAutoRegistrationHandler(store: Store, events: ProvisioningEventSink, controlPlane: ControlPlane, logger: Logger): UnknownCertificateHandler {
  const auto = new AutoRegistration(store, events);
  // A CA may be the anchor of another tenant's devices (the installation's root): forget every tenant's list.
  controlPlane.addListener({ trustChanged: () => auto.forgetCas() });
  const inflight = new Map<string, Promise<Awaited<ReturnType<AutoRegistration['handleUnknownCertificate']>>>>();
  return {
    async handleUnknownCertificate(request) {
      // Concurrent first connections of one certificate on this node share one provisioning run.
      const key = `${request.tenantId}\u0000${request.certificateId}`;
      let p = inflight.get(key);
      if (p === undefined) {
        p = auto.handleUnknownCertificate({ tenantId: request.tenantId, certificate: request.certificateDer, intermediates: request.chainDer, clientId: request.clientId, endpointNamed: request.endpointNamed });
        inflight.set(key, p);
        void p.finally(() => inflight.delete(key)).catch(() => undefined);
      }
      const outcome = await p;
      logger.info({ tenantId: request.tenantId, certificateId: request.certificateId, outcome: outcome.kind, ...(outcome.kind === 'refused' ? { code: outcome.code, reason: outcome.reason } : {}) }, 'auto-registration');
      if (outcome.kind === 'provisioned') return outcome.firstConnect === 'reconnect' ? { kind: 'registered-reconnect' } : { kind: 'registered', certificate: outcome.certificate };
      if (outcome.kind === 'activated') return { kind: 'registered' };
      if (outcome.kind === 'pending') return { kind: 'refused', detail: 'registered PENDING_ACTIVATION (JITR); activate it and reconnect' };
      return { kind: 'refused', detail: `${outcome.code}: ${outcome.reason}` };
    },
    async activatePending(tenantId, certificateId) {
      try {
        return await auto.activateIfAllowListed(tenantId, certificateId);
      } catch (error) {
        logger.warn({ err: error, tenantId, certificateId }, 'JITR allow-list activation of a pending certificate failed');
        return false;
      }
    },
    onPendingCertificate(tenantId, certificateId) {
      auto.announceStillPending(tenantId, certificateId).catch((error: unknown) => logger.warn({ err: error }, 'JITR re-announce failed'));
    },
  };
}
