import { defineErrors } from '../errors/index.ts';

/** Error codes the CLI itself prints (besides the server's codes it relays). */
export const CliErrors = defineErrors({
  CLI_SERVER_UNREACHABLE: { kind: 'unavailable', description: 'The CLI cannot reach the server at GATEHOUSE_URL (or the local data directory server.json).' },
  CLI_FILE_UNREADABLE: { kind: 'invalid', description: 'A file named on the command line is missing or unreadable.' },
  CLI_OUTPUT_EXISTS: { kind: 'conflict', description: 'The --out directory already holds a private key or certificate; the CLI never overwrites key material.' },
  CLI_ARCHIVE_UNREADABLE: { kind: 'invalid', description: 'An archive given on the command line cannot be opened: the 7z command is missing, the archive is damaged, or it lacks the expected inner archive.' },
  CLI_DRY_RUN_WOULD_FAIL: { kind: 'conflict', description: '`template dry-run`: the plan evaluates, but applying it now would fail (the server\'s code and message follow, e.g. a policy the template names does not exist).' },
  CLI_BULK_INCOMPLETE: { kind: 'conflict', description: '`bulk start --wait` / `bulk resume --wait`: the task ended FAILED or STOPPED, or some of its lines failed (the task is printed first; `gatehouse bulk errors <taskId>` lists the failed lines).' },
  CLI_USAGE_INVALID: { kind: 'invalid', description: 'An option or argument on the command line is missing, malformed or conflicts with another.' },
});
