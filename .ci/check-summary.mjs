// Reads the JSON written by test/summary-reporter.ts (KNOCKTAIL_TEST_SUMMARY) and .ci/allowed-skips: fails on a
// skipped test that is not allowed, names how many end-to-end suites ran, and ends with CI's summary line.
import { readFileSync } from 'node:fs';

const [summaryFile, allowFile] = process.argv.slice(2);
let summary;
try {
  summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
} catch (error) {
  console.error(`ci: no test summary in ${summaryFile} (${error.message}): the tests did not run to the end`);
  process.exit(1);
}
const allowed = new Map(
  readFileSync(allowFile, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const bar = line.lastIndexOf(' | ');
      return [line.slice(0, bar).trim(), line.slice(bar + 3).trim()];
    }),
);
let failed = false;
for (const skipped of summary.skipped) {
  const id = `${skipped.file} › ${skipped.name}`;
  if (allowed.has(id)) {
    console.log(`ci: allowed skip: ${id} (${skipped.reason}); allowed because ${allowed.get(id)}`);
  } else {
    console.log(`ci: FAIL: skipped test not on .ci/allowed-skips: ${id}: ${skipped.reason}`);
    failed = true;
  }
}
if (summary.e2eNotRun.length > 0) {
  console.log(`ci: FAIL: end-to-end suites that ran no test: ${summary.e2eNotRun.join(', ')}`);
  failed = true;
}
if (summary.failed > 0) failed = true;
console.log(`ci: end-to-end suites run: ${summary.e2eRan.length} of ${summary.e2eRan.length + summary.e2eNotRun.length} (${summary.e2eRan.map((file) => file.replace(/^test\/e2e\//, '')).join(', ')})`);
console.log(`ci: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped.length} skipped`);
process.exit(failed ? 1 : 0);
