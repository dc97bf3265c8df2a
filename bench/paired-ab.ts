/**
 * The paired A/B loop of bench/ab-jitp.ts and bench/ab-fleet.ts: two servers (a baseline checkout's and this one's)
 * take turns provisioning never-seen devices, round by round, the order alternating, and each round pairs the two
 * servers' CPU per device and rate, measured within seconds of each other.
 *
 * Why: on the shared 2-core box the machine's speed drifts by 10–30% within minutes, so two separate runs of a
 * benchmark cannot show a 5% change; paired rounds can (the drift hits both servers of a pair alike).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as here from './support.ts';

/** One side of the comparison: a started server and a load that provisions its next `count` devices. */
export interface AbSide {
  readonly gh: here.GatehouseProcess;
  load(count: number): Promise<{ readonly cpuMs: number; readonly rate: number; readonly failed: number }>;
}

/** The options every paired A/B bench takes: `--baseline <dir>` (required), `--warmup`, `--rounds`, `--per-round`. */
export interface AbOptions {
  readonly baselineDir: string;
  readonly warmup: number;
  readonly rounds: number;
  readonly perRound: number;
  /** The baseline checkout's bench/support.ts, to start its server with its own code. */
  readonly baselineSupport: typeof here;
}

/** Parses the common options (exits with the usage line when `--baseline` is not a Gatehouse checkout). */
export async function abOptions(bench: string, defaults: { warmup: number; rounds: number; perRound: number }): Promise<AbOptions> {
  const args = here.parseArgs(process.argv.slice(2));
  const baselineDir = args.options.get('baseline');
  if (baselineDir === undefined || !existsSync(path.join(baselineDir, 'bench', 'support.ts'))) {
    process.stderr.write(`usage: npx tsx bench/${bench}.ts --baseline <another Gatehouse checkout> [--warmup ${defaults.warmup}] [--rounds ${defaults.rounds}] [--per-round ${defaults.perRound}]\n`);
    process.exit(2);
  }
  const baselineSupport = (await import(pathToFileURL(path.resolve(baselineDir, 'bench', 'support.ts')).href)) as typeof here;
  return {
    baselineDir,
    warmup: here.warmupOption(args, defaults.warmup),
    rounds: here.intOption(args, 'rounds', defaults.rounds),
    perRound: here.intOption(args, 'per-round', defaults.perRound),
    baselineSupport,
  };
}

/** Warms both sides up, runs the alternating rounds, prints each round and the geometric means, and stops both servers. */
export async function runPairedAb(bench: string, o: AbOptions, base: AbSide, mine: AbSide): Promise<void> {
  try {
    here.say(`[${bench}] baseline ${path.resolve(o.baselineDir)} (pid ${base.gh.pid ?? '?'}) vs this checkout (pid ${mine.gh.pid ?? '?'}); ${o.warmup} warm-up devices each, ${o.rounds} rounds of ${o.perRound}`);
    await base.load(o.warmup);
    await mine.load(o.warmup);
    const cpuRatios: number[] = [];
    const rateRatios: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const [first, second] = r % 2 === 0 ? [base, mine] : [mine, base];
      const a = await first.load(o.perRound);
      const b = await second.load(o.perRound);
      const [b0, m] = first === base ? [a, b] : [b, a];
      cpuRatios.push(m.cpuMs / b0.cpuMs);
      rateRatios.push(m.rate / b0.rate);
      here.emit(bench, 'round', r, 'index', { baselineCpuMsPerDevice: here.round(b0.cpuMs), thisCpuMsPerDevice: here.round(m.cpuMs), baselineRate: here.round(b0.rate), thisRate: here.round(m.rate), failed: b0.failed + m.failed });
      here.say(`[${bench}] round ${r}: baseline ${here.round(b0.cpuMs)} ms/device ${here.round(b0.rate)}/s | this ${here.round(m.cpuMs)} ms/device ${here.round(m.rate)}/s | CPU ×${here.round(m.cpuMs / b0.cpuMs)}, rate ×${here.round(m.rate / b0.rate)}${b0.failed + m.failed > 0 ? ` | ${b0.failed + m.failed} FAILED` : ''}`);
    }
    const geomean = (xs: readonly number[]): number => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
    const cpu = geomean(cpuRatios);
    const rate = geomean(rateRatios);
    const better = cpuRatios.filter((x) => x < 1).length;
    here.emit(bench, 'cpu_per_device_this_over_baseline', cpu, 'ratio', { rounds: o.rounds, perRound: o.perRound, warmup: o.warmup, roundsWithLessCpu: better, ...here.machineLoad() });
    here.emit(bench, 'rate_this_over_baseline', rate, 'ratio', { rounds: o.rounds, perRound: o.perRound, warmup: o.warmup });
    here.say(`[${bench}] this/baseline: server CPU per device ×${here.round(cpu)} (less in ${better} of ${o.rounds} rounds), rate ×${here.round(rate)} (geometric means)`);
  } finally {
    await base.gh.destroy();
    await mine.gh.destroy();
  }
}
