#!/usr/bin/env node
// Launcher: loads the TypeScript sources through tsx (no build step), then runs the CLI.
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';
import 'reflect-metadata';

// `serve` is a long-running server whose per-connection path (TLS, MQTT, authentication, JITP, fleet provisioning)
// spans hundreds of functions, each run once or a few times per device. With V8's default tier-up budget (67584) that
// path is still being optimized after thousands of devices (bench/jitp.ts, server CPU per JITP device: 2.98 ms after
// 100 devices, 2.31 ms after 2,000, 1.7 ms after 8,000). A quarter of it has the hot functions optimized much sooner.
// Interleaved runs on 2026-11-29: devices 150-1150 after a start cost 2.63 and 2.80 ms instead of 3.00 and 3.42 ms;
// devices 2050-3050 cost 1.90-1.97 ms instead of 2.01-2.13 ms. So a fleet reconnecting after a restart is served
// near full speed. Set before the application's modules load, so every function gets the smaller budget.
// GATEHOUSE_V8_INTERRUPT_BUDGET overrides it (0 keeps V8's default).
if (process.argv[2] === 'serve') {
  const budget = process.env.GATEHOUSE_V8_INTERRUPT_BUDGET ?? '16384';
  if (!/^(0|[1-9][0-9]{0,8})$/.test(budget)) {
    process.stderr.write(`CONFIG_INVALID: GATEHOUSE_V8_INTERRUPT_BUDGET must be a whole number (0 = V8's default), got "${budget}"\n`);
    process.exit(2);
  }
  if (budget !== '0') v8.setFlagsFromString(`--interrupt-budget=${budget}`);
}

// A closed pipe (`gatehouse … | head`) ends the command quietly instead of crashing.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv, {
  env: process.env,
  cwd: process.cwd(),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
});
