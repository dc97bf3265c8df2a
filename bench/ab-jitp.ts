/**
 * Paired A/B of two checkouts on the JITP path (diagnostic, no goal): the server of this checkout and the server of
 * `--baseline <dir>` (another checkout of Gatehouse with its own node_modules, e.g. a `git worktree` of the commit
 * before a change) run side by side, each with its own data dir and a BYO CA registered with proof of possession, and
 * take turns: after `--warmup` devices each, `--rounds` alternating rounds of `--per-round` never-seen devices
 * (concurrency 16, the lean client of bench/jitp.ts; the round order alternates too). Each round pairs the two
 * servers' CPU per provisioned device and rate, measured within seconds of each other.
 *
 * Why: on the shared 2-core box the machine's speed drifts by 10–30% within minutes, so two separate runs of
 * bench/jitp.ts cannot show a 5% change; paired rounds can (the drift hits both servers of a pair alike). It showed a
 * thread-pool signature check costing 5.7% more CPU per device (7 of 8 rounds) and the group-commit delay saving 6–16%.
 *
 *   npx tsx bench/ab-jitp.ts --baseline /work/old [--warmup 2000] [--rounds 8] [--per-round 400]
 *
 * stdout: one JSON line per round and one for the summary (geometric means of this/baseline); stderr: the summary.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateKeyPair } from '../src/pki/index.ts';
import { runMqttConnectLoad } from './mqtt-connect-load.ts';
import * as here from './support.ts';

const BENCH = 'ab-jitp';
const args = here.parseArgs(process.argv.slice(2));
const baselineDir = args.options.get('baseline');
if (baselineDir === undefined || !existsSync(path.join(baselineDir, 'bench', 'support.ts'))) {
  process.stderr.write('usage: npx tsx bench/ab-jitp.ts --baseline <another Gatehouse checkout> [--warmup 2000] [--rounds 8] [--per-round 400]\n');
  process.exit(2);
}
const warmup = here.warmupOption(args, 2000);
const rounds = here.intOption(args, 'rounds', 8);
const perRound = here.intOption(args, 'per-round', 400);
const JITP_TEMPLATE = here.jitpBenchTemplate();

/** One side of the comparison: a started server with its devices, and a load that provisions the next `count`. */
interface Side {
  readonly gh: here.GatehouseProcess;
  load(count: number): Promise<{ readonly cpuMs: number; readonly rate: number; readonly failed: number }>;
}

const maker = await here.createMakerCa('A/B Maker CA');

async function side(tag: string, start: typeof here.startGatehouse): Promise<Side> {
  const gh = await start({ logLevel: 'warn' });
  const code = here.str((await gh.api('GET', '/v1/cas/registration-code')).body, 'registrationCode');
  const verification = maker.issuer.issue({ publicKey: generateKeyPair('EC_P256').spkiDer, subject: { CN: [code] }, extendedKeyUsage: 'clientAuth', validityDays: 1 });
  const caId = here.str((await gh.api('POST', '/v1/cas/register', { caCertificatePem: maker.certificate.pem, verificationCertificatePem: verification.pem, allowAutoRegistration: true, setAsActive: true })).body, 'caCertificateId');
  await gh.api('POST', '/v1/provisioning-templates', { templateName: 'ab-jitp', templateBody: JITP_TEMPLATE, type: 'JITP' });
  await gh.api('PATCH', `/v1/cas/${caId}`, { autoRegistrationStatus: 'ENABLE', registrationConfig: { templateName: 'ab-jitp' }, firstConnect: 'continue' });
  const names = Array.from({ length: warmup + rounds * perRound }, (_, i) => `${tag}-${String(i).padStart(6, '0')}`);
  const devices = names.map((cn) => here.issueClientIdentity(maker.issuer, cn));
  let next = 0;
  return {
    gh,
    async load(count) {
      const clients = devices.slice(next, next + count);
      const batch = names.slice(next, next + count);
      next += count;
      here.prepareClientContexts(clients, gh.rootCaPem);
      const cpu0 = here.processCpuSeconds(gh.pid);
      const r = await runMqttConnectLoad({
        host: '127.0.0.1', port: gh.mqttPort, caPem: gh.rootCaPem, servername: 'localhost', clients, count: clients.length, concurrency: 16,
        clientId: (i) => batch[i] ?? `missing-${i}`, topic: (i) => `jitp/${batch[i] ?? 'missing'}/hello`, timeLimitMs: 60_000, serverPid: gh.pid,
      });
      return { cpuMs: ((here.processCpuSeconds(gh.pid) - cpu0) * 1000) / Math.max(1, r.pool.completed), rate: r.pool.completed / r.pool.seconds, failed: r.pool.failed };
    },
  };
}

const baselineSupport = (await import(pathToFileURL(path.resolve(baselineDir, 'bench', 'support.ts')).href)) as typeof here;
const base = await side('base', baselineSupport.startGatehouse);
const mine = await side('this', here.startGatehouse);
try {
  here.say(`[${BENCH}] baseline ${path.resolve(baselineDir)} (pid ${base.gh.pid ?? '?'}) vs this checkout (pid ${mine.gh.pid ?? '?'}); ${warmup} warm-up devices each, ${rounds} rounds of ${perRound}`);
  await base.load(warmup);
  await mine.load(warmup);
  const cpuRatios: number[] = [];
  const rateRatios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [first, second] = r % 2 === 0 ? [base, mine] : [mine, base];
    const a = await first.load(perRound);
    const b = await second.load(perRound);
    const [b0, m] = first === base ? [a, b] : [b, a];
    cpuRatios.push(m.cpuMs / b0.cpuMs);
    rateRatios.push(m.rate / b0.rate);
    here.emit(BENCH, 'round', r, 'index', { baselineCpuMsPerDevice: here.round(b0.cpuMs), thisCpuMsPerDevice: here.round(m.cpuMs), baselineRate: here.round(b0.rate), thisRate: here.round(m.rate), failed: b0.failed + m.failed });
    here.say(`[${BENCH}] round ${r}: baseline ${here.round(b0.cpuMs)} ms/device ${here.round(b0.rate)}/s | this ${here.round(m.cpuMs)} ms/device ${here.round(m.rate)}/s | CPU ×${here.round(m.cpuMs / b0.cpuMs)}, rate ×${here.round(m.rate / b0.rate)}`);
  }
  const geomean = (xs: readonly number[]): number => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
  const cpu = geomean(cpuRatios);
  const rate = geomean(rateRatios);
  const better = cpuRatios.filter((x) => x < 1).length;
  here.emit(BENCH, 'cpu_per_device_this_over_baseline', cpu, 'ratio', { rounds, perRound, warmup, roundsWithLessCpu: better, ...here.machineLoad() });
  here.emit(BENCH, 'rate_this_over_baseline', rate, 'ratio', { rounds, perRound, warmup });
  here.say(`[${BENCH}] this/baseline: server CPU per device ×${here.round(cpu)} (less in ${better} of ${rounds} rounds), rate ×${here.round(rate)} (geometric means)`);
} finally {
  await base.gh.destroy();
  await mine.gh.destroy();
}
