import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints the plain closing line `N passed, N failed, N skipped` after a run, so tools that read test output (CI)
 * see the counts without parsing Vitest's own summary. A test that did not run because its file or a hook before it
 * failed (`beforeAll` throwing marks the suite's tests skipped) counts as failed, not skipped.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: readonly TestModule[]): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      const moduleFailed = m.state() === 'failed';
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed' || (moduleFailed && t.options.mode === 'run')) failed += 1;
        else skipped += 1;
      }
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
