export { loadConfig, loadClientConfig, SETTINGS, type GatehouseConfig, type ClientConfig, type ConfigSources, type LogLevel } from './config.ts';
export { ConfigErrors } from './errors.ts';
