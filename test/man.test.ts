/**
 * The manual page (man/knocktail.1) against the real command line: for the daemon and for every command,
 * the options the page documents are exactly those `--help` lists; every command has a section and a
 * SYNOPSIS line; the page carries the package's version and is shipped by npm.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VERBS } from '../src/commands/verbs.js';
import { needs, repoRoot, runCli } from './helpers.js';

const MAN_PAGE = join(repoRoot, 'man', 'knocktail.1');
const page = readFileSync(MAN_PAGE, 'utf8');
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));

/** Roff source as plain text: `\-` is a minus, font changes vanish. */
function plain(roff: string): string {
  return roff.replaceAll('\\-', '-').replace(/\\f[BIRP]/g, '');
}

/** The body of a section: from the line `heading` to the next .SH or .SS. */
function section(heading: string): string {
  const lines = page.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `man/knocktail.1 has no section ${heading}`);
  const end = lines.findIndex((line, index) => index > start && /^\.S[HS] /.test(line));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** The options a man page section documents: the words of each .TP heading that start with "-". */
function manOptions(body: string): string[] {
  const lines = body.split('\n');
  const headings = lines.flatMap((line, index) => (lines[index - 1] === '.TP' ? [plain(line)] : []));
  return headings.flatMap((heading) => heading.match(/(?<![\w-])--?[A-Za-z0-9][\w-]*/g) ?? []).sort();
}

/** The options `--help` lists: "  -c, --config FILE  …" and "      --json  …" lines (option within the first columns). */
function helpOptions(help: string): string[] {
  return help
    .split('\n')
    .flatMap((line) => /^ {2,6}(?:(-[A-Za-z0-9]), )?(--[a-z0-9-]+)/.exec(line)?.slice(1) ?? [])
    .filter((option): option is string => option !== undefined)
    .sort();
}

describe('man/knocktail.1', () => {
  it('documents exactly the daemon options of knocktail --help', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.deepEqual(manOptions(section('.SH DAEMON OPTIONS')), helpOptions(help.stdout));
  });

  for (const verb of VERBS) {
    it(`documents exactly the options of knocktail ${verb.name} --help`, async () => {
      const help = await runCli([verb.name, '--help']);
      assert.equal(help.code, 0);
      const options = helpOptions(help.stdout);
      assert.ok(options.includes('--help'), 'the option lines of --help were found');
      assert.deepEqual(manOptions(section(`.SS "knocktail ${verb.name}"`)), options);
      assert.match(section('.SH SYNOPSIS'), new RegExp(`^\\.B knocktail ${verb.name}$`, 'm'));
    });
  }

  it('carries the package version and is shipped (package.json "files" and "man")', () => {
    assert.match(page, new RegExp(`^\\.TH KNOCKTAIL 1 "[^"]*" "knocktail ${pkg.version.replaceAll('.', '\\.')}"`, 'm'));
    assert.ok(pkg.files.includes('man'), 'man/ is in "files"');
    assert.deepEqual(pkg.man, ['./man/knocktail.1']);
  });

  it('renders without a warning from groff (man\'s formatter)', { skip: needs({ tools: ['groff'] }) }, () => {
    const result = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', MAN_PAGE], { encoding: 'utf8' });
    assert.equal(result.status, 0);
    assert.equal(result.stderr, '');
  });
});
