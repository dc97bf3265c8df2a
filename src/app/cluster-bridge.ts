/**
 * Registry change notifications across the processes of an installation. The control plane tells its listeners
 * (the gateway, webhook reload) when something that live connections depend on changed; with several processes
 * the change happens in one of them (the one that served the API call) and every other must hear it too, within
 * the second the gateway promises. This forwards local notifications to the Redis channel and replays the other
 * processes' notifications locally.
 */
import type { Logger } from 'pino';
import type { RedisChannel } from '../events/index.ts';
import type { ControlPlane } from '../provisioning/index.ts';

/** One notification on the wire. */
export type ChangeMessage =
  | { readonly kind: 'certificate'; readonly tenantId: string; readonly certificateId: string }
  | { readonly kind: 'policies'; readonly tenantId: string }
  | { readonly kind: 'trust'; readonly tenantId: string }
  | { readonly kind: 'tenants' }
  | { readonly kind: 'webhooks' }
  | { readonly kind: 'crl'; readonly caCertificateId: string };

function isName(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 256;
}

/** Connects `controlPlane` to `channel` both ways; returns the function that stops replaying remote changes. */
export function bridgeChanges(controlPlane: ControlPlane, channel: RedisChannel<ChangeMessage>, logger: Logger): () => void {
  // Set while a remote notification is replayed, so that it is not sent back to the channel.
  let replaying = false;
  const send = (message: ChangeMessage): void => {
    if (!replaying) channel.publish(message);
  };
  controlPlane.addListener({
    certificateChanged: (tenantId, certificateId) => send({ kind: 'certificate', tenantId, certificateId }),
    policiesChanged: (tenantId) => send({ kind: 'policies', tenantId }),
    trustChanged: (tenantId) => send({ kind: 'trust', tenantId }),
    tenantsChanged: () => send({ kind: 'tenants' }),
    webhooksChanged: () => send({ kind: 'webhooks' }),
    crlStale: (caCertificateId) => send({ kind: 'crl', caCertificateId }),
  });
  return channel.subscribe((message) => {
    const m = message as Partial<Record<string, unknown>>;
    replaying = true;
    try {
      if (m['kind'] === 'certificate' && isName(m['tenantId']) && isName(m['certificateId'])) controlPlane.notifyCertificateChanged(m['tenantId'], m['certificateId']);
      else if (m['kind'] === 'policies' && isName(m['tenantId'])) controlPlane.notifyPoliciesChanged(m['tenantId']);
      else if (m['kind'] === 'trust' && isName(m['tenantId'])) controlPlane.notifyTrustChanged(m['tenantId']);
      else if (m['kind'] === 'tenants') controlPlane.notifyTenantsChanged();
      else if (m['kind'] === 'webhooks') controlPlane.notifyWebhooksChanged();
      else if (m['kind'] === 'crl' && isName(m['caCertificateId'])) controlPlane.notifyCrlStale(m['caCertificateId']);
      else logger.warn({ message }, 'unknown change notification on the bus; ignored');
    } finally {
      replaying = false;
    }
  });
}
