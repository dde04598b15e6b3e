/**
 * `knocktail replay` on the real logrotate results of fixtures/real/rotation/: three rsyslog outputs of one knock
 * stream (DPT 20001…20300, one packet each), rotated by rename+create+HUP, by copytruncate, and by Debian's stock
 * stanza (whose postrotate does nothing without systemd). Whatever order the files are given in, each set must
 * be read oldest first, .gz included, so that every DPT comes exactly once and in order.
 *
 * The proof goes through the matcher: ten doors of 30 steps cover the 300 ports, and a door opens only when its
 * 30 ports arrive in order with nothing lost or repeated in between.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { fixture, replayOutput, runCli, tempDir } from '../helpers.js';

const FIRST = 20001;
const STEPS = 30;
const DOORS = 10;
const doorName = (index: number) => `ports${String(index + 1).padStart(2, '0')}`;

const conf = join(tempDir(), 'rotation.conf');
writeFileSync(conf, Array.from({ length: DOORS }, (_, door) => [
  `[${doorName(door)}]`,
  `  sequence = ${Array.from({ length: STEPS }, (_, step) => FIRST + door * STEPS + step).join(',')}`,
  '  seq_timeout = 60',
  '  start_command = true %IP%',
].join('\n')).join('\n'));

const rotation = (name: string) => fixture('real', 'rotation', name);

const VARIANTS: Record<string, string[]> = {
  'rename + create + HUP': ['kern-create.log.2.gz', 'kern-create.log.1', 'kern-create.log'],
  copytruncate: ['kern-copytruncate.log.2.gz', 'kern-copytruncate.log.1', 'kern-copytruncate.log'],
  'Debian stock stanza, no HUP (no kern-stockpostrotate.log left)': ['kern-stockpostrotate.log.2.gz', 'kern-stockpostrotate.log.1'],
};

interface Replayed {
  /** `door:stage` of every stage event, in the order reported. */
  stages: string[];
  opens: Array<{ door: string; ip: string }>;
  /** Knock lines parsed per file, from the summary. */
  parsed: Map<string, number>;
}

async function replay(files: string[]): Promise<Replayed> {
  const result = await runCli(['replay', '-c', conf, '--json', ...files]);
  assert.equal(result.code, 0, result.stderr);
  const { events, summary } = replayOutput(result.stdout);
  const parsed = new Map(summary.inputs.map((input) => [basename(input.input), input.lines!.packets]));
  return {
    stages: events.filter((event) => event.event === 'stage').map((event) => `${event.door}:${event.stage}`),
    opens: events.filter((event) => event.event === 'open').map(({ door, ip }) => ({ door: door!, ip: ip! })),
    parsed,
  };
}

/** Every door reached every stage in order, and opened once, for the knocking client. */
function assertEveryPortOnceInOrder(replayed: Replayed): void {
  const everyStage = Array.from({ length: DOORS }, (_, door) => Array.from({ length: STEPS }, (_, step) => `${doorName(door)}:${step + 1}`)).flat();
  assert.deepEqual(replayed.stages, everyStage);
  assert.deepEqual(replayed.opens, Array.from({ length: DOORS }, (_, door) => ({ door: doorName(door), ip: '10.66.0.2' })));
}

describe('replay of real rotated sets: every DPT 20001..20300 exactly once, in order', () => {
  for (const [variant, files] of Object.entries(VARIANTS)) {
    it(variant, async () => {
      // Given newest first, and shuffled: the set is still read oldest first.
      for (const order of [[...files].reverse(), [files[files.length - 1]!, ...files.slice(0, -1)]]) {
        const replayed = await replay(order.map(rotation));
        assertEveryPortOnceInOrder(replayed);
        assert.equal([...replayed.parsed.values()].reduce((a, b) => a + b, 0), 300);
      }
    });
  }

  it('the files hold what rotation/README.md says (so the test above reads all of them)', async () => {
    const replayed = await replay(VARIANTS['rename + create + HUP']!.map(rotation));
    assert.deepEqual(Object.fromEntries(replayed.parsed), { 'kern-create.log.2.gz': 47, 'kern-create.log.1': 112, 'kern-create.log': 141 });
  });
});

describe('the check can fail', () => {
  /** A copy of the create variant with `edit` applied to the lines of its middle file. */
  function editedCopy(edit: (lines: string[]) => string[]): string[] {
    const dir = tempDir();
    const [oldest, middle, newest] = VARIANTS['rename + create + HUP']!;
    writeFileSync(join(dir, oldest!), gzipSync(gunzipSync(readFileSync(rotation(oldest!)))));
    writeFileSync(join(dir, middle!), `${edit(readFileSync(rotation(middle!), 'utf8').trimEnd().split('\n')).join('\n')}\n`);
    writeFileSync(join(dir, newest!), readFileSync(rotation(newest!)));
    return [newest!, middle!, oldest!].map((name) => join(dir, name));
  }
  const isPort = (port: number) => (line: string) => line.includes(` DPT=${port} `);

  it('a lost line keeps its door shut', async () => {
    const replayed = await replay(editedCopy((lines) => lines.filter((line) => !isPort(20100)(line))));
    assert.deepEqual(replayed.opens.map((open) => open.door), [0, 1, 2, 4, 5, 6, 7, 8, 9].map(doorName));
  });

  it('a line read twice keeps its door shut', async () => {
    const replayed = await replay(editedCopy((lines) => lines.flatMap((line) => (isPort(20100)(line) ? [line, line] : [line]))));
    assert.deepEqual(replayed.opens.map((open) => open.door), [0, 1, 2, 4, 5, 6, 7, 8, 9].map(doorName));
  });
});
