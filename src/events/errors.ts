import { defineErrors } from '../errors/index.ts';

/** Error codes of the event bus. */
export const EventErrors = defineErrors({
  EVENTS_BUS_UNREACHABLE: { kind: 'unavailable', description: 'The Redis bus (GATEHOUSE_BUS_URL) did not answer; with several workers or nodes it is required.' },
});
