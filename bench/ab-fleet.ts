/**
 * Paired A/B of two checkouts on the fleet-provisioning-by-claim path (diagnostic, no goal): the server of this
 * checkout and the server of `--baseline <dir>` (another checkout of Gatehouse with its own node_modules, e.g. a
 * `git worktree` of the commit before a change) run side by side, each with the template, policy and batch claim of
 * bench/fleet.ts, and take turns: after `--warmup` devices each, `--rounds` alternating rounds of `--per-round`
 * devices (concurrency 16, the lean device of bench/fleet.ts: claim → CSR → RegisterThing → reconnect → publish).
 * Each round pairs the two servers' CPU per provisioned device and rate (the loop is bench/paired-ab.ts).
 *
 *   npx tsx bench/ab-fleet.ts --baseline /work/old [--warmup 1000] [--rounds 8] [--per-round 200]
 *
 * stdout: one JSON line per round and one for the summary (geometric means of this/baseline); stderr: the summary.
 */
import { runLeanFleetDevice } from './lean-fleet-device.ts';
import { abOptions, runPairedAb } from './paired-ab.ts';
import type { AbSide } from './paired-ab.ts';
import * as here from './support.ts';

const BENCH = 'ab-fleet';
const o = await abOptions(BENCH, { warmup: 1000, rounds: 8, perRound: 200 });

async function side(tag: string, start: typeof here.startGatehouse): Promise<AbSide> {
  const gh = await start({ logLevel: 'warn' });
  await gh.api('POST', '/v1/policies', { policyName: 'bench-fleet-device', policyDocument: here.FLEET_BENCH_DEVICE_POLICY });
  await gh.api('POST', '/v1/provisioning-templates', { templateName: 'bench-fleet', templateBody: here.fleetBenchTemplate('bench-fleet-device') });
  const c = await gh.api('POST', '/v1/provisioning-templates/bench-fleet/claim-certificates', { batch: `ab-${tag}` });
  const claim: here.ClientIdentity = { certPem: here.str(c.body, 'certificatePem'), keyPem: here.str(c.body, 'keyPair.PrivateKey') };
  here.clientSecureContext(claim, gh.rootCaPem);
  let next = 0;
  return {
    gh,
    async load(count) {
      const first = next;
      next += count;
      const cpu0 = here.processCpuSeconds(gh.pid);
      const pool = await here.runPool(count, 16, 60_000, async (i) => {
        const serial = `${tag}${first + i}`;
        await runLeanFleetDevice({ host: '127.0.0.1', port: gh.mqttPort, servername: 'localhost', caPem: gh.rootCaPem, claim, templateName: 'bench-fleet', serialNumber: serial, claimClientId: `claim-${serial}`, expectedThingName: `bench-${serial}`, timeoutMs: 15_000 });
      });
      return { cpuMs: ((here.processCpuSeconds(gh.pid) - cpu0) * 1000) / Math.max(1, pool.completed), rate: pool.completed / pool.seconds, failed: pool.failed };
    },
  };
}

const base = await side('B', o.baselineSupport.startGatehouse);
const mine = await side('T', here.startGatehouse);
await runPairedAb(BENCH, o, base, mine);
