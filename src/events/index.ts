/**
 * `src/events` — lifecycle events and the bus that carries them (issue 4 §6). The gateway publishes presence
 * events on the bus and delivers them to the tenant's MQTT broker; webhook delivery subscribes to the same bus.
 */
export { InProcessEventBus, type EventBus, type EventHandler, type InProcessEventBusOptions } from './event-bus.ts';
export { topicOfEvent, payloadOfEvent, eventTypeOf, type LifecycleEvent, type PresenceEvent, type ProvisioningEvent, type DisconnectReason } from './lifecycle-events.ts';
export {
  WebhookDispatcher,
  MemoryDeadLetterSink,
  signWebhookBody,
  webhookBodyOf,
  type WebhookTarget,
  type WebhookDispatcherOptions,
  type DeadLetter,
  type DeadLetterSink,
} from './webhook-dispatcher.ts';
export { RedisChannel, redactUrl, type RedisChannelOptions } from './redis-channel.ts';
export { EventErrors } from './errors.ts';
export { RedisTokenBuckets } from './redis-token-buckets.ts';
