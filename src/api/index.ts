export { buildApiServer, BODY_LIMIT } from './server.ts';
export { ApiErrors, STATUS_OF_KIND } from './errors.ts';
export type { ApiDependencies, Caller } from './context.ts';
