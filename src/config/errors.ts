import { defineErrors } from '../errors/index.ts';

/** Error codes of configuration loading. */
export const ConfigErrors = defineErrors({
  CONFIG_INVALID: { kind: 'invalid', description: 'A setting has an invalid value.' },
  CONFIG_UNKNOWN_SETTING: { kind: 'invalid', description: 'The config file names a setting that does not exist.' },
  CONFIG_FILE_UNREADABLE: { kind: 'invalid', description: 'The config file cannot be read or is not valid JSON.' },
});
