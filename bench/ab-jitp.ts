/**
 * Paired A/B of two checkouts on the JITP path (diagnostic, no goal): the server of this checkout and the server of
 * `--baseline <dir>` (another checkout of Gatehouse with its own node_modules, e.g. a `git worktree` of the commit
 * before a change) run side by side, each with its own data dir and a BYO CA registered with proof of possession, and
 * take turns: after `--warmup` devices each, `--rounds` alternating rounds of `--per-round` never-seen devices
 * (concurrency 16, the lean client of bench/jitp.ts; the round order alternates too). Each round pairs the two
 * servers' CPU per provisioned device and rate, measured within seconds of each other.
 * The loop is bench/paired-ab.ts. It showed a thread-pool signature check costing 5.7% more CPU per device (7 of 8
 * rounds) and the group-commit delay saving 6–16%.
 *
 *   npx tsx bench/ab-jitp.ts --baseline /work/old [--warmup 2000] [--rounds 8] [--per-round 400]
 *
 * stdout: one JSON line per round and one for the summary (geometric means of this/baseline); stderr: the summary.
 */
import { generateKeyPair } from '../src/pki/index.ts';
import { runMqttConnectLoad } from './mqtt-connect-load.ts';
import { abOptions, runPairedAb } from './paired-ab.ts';
import type { AbSide } from './paired-ab.ts';
import * as here from './support.ts';

const BENCH = 'ab-jitp';
const o = await abOptions(BENCH, { warmup: 2000, rounds: 8, perRound: 400 });
const JITP_TEMPLATE = here.jitpBenchTemplate();
const maker = await here.createMakerCa('A/B Maker CA');

async function side(tag: string, start: typeof here.startGatehouse): Promise<AbSide> {
  const gh = await start({ logLevel: 'warn' });
  const code = here.str((await gh.api('GET', '/v1/cas/registration-code')).body, 'registrationCode');
  const verification = maker.issuer.issue({ publicKey: generateKeyPair('EC_P256').spkiDer, subject: { CN: [code] }, extendedKeyUsage: 'clientAuth', validityDays: 1 });
  const caId = here.str((await gh.api('POST', '/v1/cas/register', { caCertificatePem: maker.certificate.pem, verificationCertificatePem: verification.pem, allowAutoRegistration: true, setAsActive: true })).body, 'caCertificateId');
  await gh.api('POST', '/v1/provisioning-templates', { templateName: 'ab-jitp', templateBody: JITP_TEMPLATE, type: 'JITP' });
  await gh.api('PATCH', `/v1/cas/${caId}`, { autoRegistrationStatus: 'ENABLE', registrationConfig: { templateName: 'ab-jitp' }, firstConnect: 'continue' });
  const names = Array.from({ length: o.warmup + o.rounds * o.perRound }, (_, i) => `${tag}-${String(i).padStart(6, '0')}`);
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

const base = await side('base', o.baselineSupport.startGatehouse);
const mine = await side('this', here.startGatehouse);
await runPairedAb(BENCH, o, base, mine);
