/**
 * A node:test reporter that `npm test` runs beside the spec reporter: at the end it lists every skipped test with
 * its reason and says how many end-to-end suites ran. With KNOCKTAIL_TEST_SUMMARY=FILE it
 * also writes that as JSON, which .ci/run checks against its allow-list of skips. Tests run on the build, so the
 * files are named back to their sources (dist/test/x.test.js → test/x.test.ts).
 * When the test runner loads this file as a test file, it defines the reporter and runs nothing.
 */
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

interface TestEventData {
  name: string;
  nesting: number;
  file?: string;
  skip?: string | boolean;
  todo?: string | boolean;
  details?: { type?: string };
}

export interface Skipped {
  file: string;
  /** The names from the outermost suite down, joined with › . */
  name: string;
  reason: string;
}

export interface TestSummary {
  passed: number;
  failed: number;
  todo: number;
  skipped: Skipped[];
  /** End-to-end suites (source paths) that ran at least one test, and those that ran none. */
  e2eRan: string[];
  e2eNotRun: string[];
}

/** The source path of a built test file. */
function sourceOf(file: string | undefined): string {
  if (file === undefined) return '(unknown file)';
  return relative(process.cwd(), file).replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

/**
 * node:test names a test by the file that called test()/it(), not by the file it ran: a suite that several test
 * files share (test/e2e/rolling-door.ts runs in file and pcap mode) counts under its own module.
 */
const isE2e = (source: string): boolean => /^test\/e2e\/[^/]+\.ts$/.test(source);

export default async function* summaryReporter(source: AsyncIterable<{ type: string; data: TestEventData }>): AsyncGenerator<string> {
  /** Per file, the names of the tests started at each nesting level (the path to the current test). */
  const paths = new Map<string, string[]>();
  const summary: TestSummary = { passed: 0, failed: 0, todo: 0, skipped: [], e2eRan: [], e2eNotRun: [] };
  const ran = new Set<string>();
  const seen = new Set<string>();
  for await (const { type, data } of source) {
    if (type === 'test:start') {
      const path = paths.get(data.file ?? '') ?? [];
      path.length = data.nesting;
      path.push(data.name);
      paths.set(data.file ?? '', path);
      continue;
    }
    if (type !== 'test:pass' && type !== 'test:fail') continue;
    // A helper module run as a file of its own (`node --test dist/test/` runs every module) defines no test and
    // passes under its own path: not a test. A file that fails to load is reported the same way, and counts.
    if (type === 'test:pass' && data.nesting === 0 && data.name === data.file) continue;
    const file = sourceOf(data.file);
    seen.add(file);
    const name = [...(paths.get(data.file ?? '') ?? []).slice(0, data.nesting), data.name].join(' › ');
    if (data.skip !== undefined && data.skip !== false) {
      summary.skipped.push({ file, name, reason: typeof data.skip === 'string' ? data.skip : '(no reason given)' });
      continue;
    }
    if (data.details?.type === 'suite') continue; // counted through its tests
    if (data.todo !== undefined && data.todo !== false) summary.todo++;
    else if (type === 'test:pass') summary.passed++;
    else summary.failed++;
    ran.add(file);
  }
  summary.e2eRan = [...seen].filter((file) => isE2e(file) && ran.has(file)).sort();
  summary.e2eNotRun = [...seen].filter((file) => isE2e(file) && !ran.has(file)).sort();
  const target = process.env.KNOCKTAIL_TEST_SUMMARY;
  if (target) writeFileSync(target, `${JSON.stringify(summary, null, 2)}\n`);
  const lines = [`skipped: ${summary.skipped.length}`];
  for (const skipped of summary.skipped) lines.push(`  ${skipped.file} › ${skipped.name}: ${skipped.reason}`);
  const e2eTotal = summary.e2eRan.length + summary.e2eNotRun.length;
  lines.push(`end-to-end suites: ${summary.e2eRan.length} of ${e2eTotal} ran${summary.e2eNotRun.length ? ` (not run: ${summary.e2eNotRun.join(', ')})` : ''}`);
  yield `${lines.join('\n')}\n`;
}
