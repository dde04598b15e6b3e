import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixture } from '../helpers.js';
import { parseFormatFile } from '../../src/config/parse.js';
import { ConfigError, LOG_FIELDS, type Diagnostic, type LogFormatBlock } from '../../src/config/types.js';
import { CONF, parse, problem, problems } from './support.js';

function patterns(block: LogFormatBlock): Record<string, string> {
  return Object.fromEntries(Object.entries(block.fields).map(([key, field]) => [key, field.pattern]));
}

function formatFileProblems(text: string): Diagnostic[] {
  let diagnostics: Diagnostic[] = [];
  assert.throws(
    () => parseFormatFile(text, 'formats/x.conf'),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      diagnostics = error.diagnostics;
      return true;
    },
  );
  return diagnostics;
}

test('blocks may come before any section and between sections without changing the current section', () => {
  const config = parse(
    [
      '<logformat early>', // 1
      '  ipclient = SRC=(?<ipclient>\\S+)',
      '</logformat>',
      '[d]', // 4
      'sequence = 7000',
      '<LogFormat mid-1.v2>', // 6: the tag is case-insensitive
      '  # a comment inside a block',
      '',
      '  PORT = DPT=(?<port>\\d+)', // 9: keys too
      '</logformat>',
      'command = still in door d', // 11
    ].join('\n'),
  );
  assert.deepEqual(
    config.logFormats.map((block) => [block.name, block.at.line]),
    [
      ['early', 1],
      ['mid-1.v2', 6],
    ],
  );
  assert.deepEqual(config.logFormats[1]!.fields, { port: { pattern: 'DPT=(?<port>\\d+)', at: { file: CONF, line: 9 } } });
  assert.equal(config.doors[0]!.startCommand, 'still in door d');
});

test('every LOG_FIELDS key is accepted; values keep "=" and are not compiled', () => {
  const body = LOG_FIELDS.map((field) => `${field} = ${field}=(?<${field}>[ (unclosed`).join('\n');
  const block = parse(`<logformat all>\n${body}\n</logformat>\n`).logFormats[0]!;
  assert.deepEqual(Object.keys(block.fields), [...LOG_FIELDS]);
  assert.equal(block.fields.sport!.pattern, 'sport=(?<sport>[ (unclosed');
});

test('a trailing backslash continues the value; the next line is taken without its leading blanks', () => {
  const block = parse(
    ['<logformat f>', 'required = ^(?<time>\\S+)\\ \\', '      \\S+\\ kernel:\\ \\', '   # comment lines are skipped', '', '\t\\[\\s*\\d+\\.\\d+\\]', 'port = DPT=(?<port>\\d+)', '</logformat>'].join('\n'),
  ).logFormats[0]!;
  assert.deepEqual(patterns(block), {
    required: '^(?<time>\\S+)\\ \\S+\\ kernel:\\ \\[\\s*\\d+\\.\\d+\\]',
    port: 'DPT=(?<port>\\d+)',
  });
  assert.equal(block.fields.required!.at.line, 2);
  assert.equal(block.fields.port!.at.line, 7);
});

test('an escaped trailing blank is kept; an even number of trailing backslashes is an escaped backslash', () => {
  const block = parse(['<logformat f>', 'ipclient = \\ SRC=(?<ipclient>\\S+)\\  \t', 'port = path\\\\', 'flags = x\\\\\\', '  y', '</logformat>'].join('\n')).logFormats[0]!;
  assert.deepEqual(patterns(block), {
    ipclient: '\\ SRC=(?<ipclient>\\S+)\\ ',
    port: 'path\\\\',
    flags: 'x\\\\y',
  });
});

test('in a free-spacing (?x) pattern the lines stay apart, so a # comment ends with its line', () => {
  const block = parse(['<logformat f>', 'required = (?x) SRC=(?<ipclient>\\S+) # the source \\', '  [ ] DPT=(?<port>\\d+)', '</logformat>'].join('\n')).logFormats[0]!;
  assert.equal(block.fields.required!.pattern, '(?x) SRC=(?<ipclient>\\S+) # the source \n[ ] DPT=(?<port>\\d+)');
});

test('continuation works in CRLF files', () => {
  const block = parse('<logformat f>\r\nrequired = a\\\r\n  b\r\n</logformat>\r\n').logFormats[0]!;
  assert.equal(block.fields.required!.pattern, 'ab');
});

test('block errors: unknown field, duplicate field, empty pattern, non-field line', () => {
  const diagnostics = problems(['<logformat f>', 'src = x', 'port = a', 'PORT = b', 'time =', 'just text', '</logformat>'].join('\n'));
  assert.deepEqual(
    diagnostics.map((d) => [d.at.line, d.message]),
    [
      [2, 'unknown logformat field "src"'],
      [4, 'field "port" is defined twice in <logformat f>'],
      [5, 'field "time" has an empty pattern'],
      [6, '"just text" is not a field definition in <logformat f>'],
    ],
  );
  assert.equal(diagnostics[0]!.hint, `fields are ${LOG_FIELDS.join(', ')}`);
  assert.equal(diagnostics[1]!.hint, 'keep one; the first is at line 3');
});

test('a trailing backslash with nothing after it is an error', () => {
  assert.match(problem('<logformat f>\nport = a\\\n</logformat>\n').message, /ends with a backslash but no line continues it/);
  assert.deepEqual(
    problems('<logformat f>\nport = a\\\n\n# c\n').map((d) => [d.at.line, d.message]),
    [
      [1, '<logformat f> is never closed'],
      [2, 'the value ends with a backslash but no line continues it'],
    ],
  );
});

test('missing close at end of file is reported at the opening line', () => {
  const diagnostics = problems('[d]\nsequence = 1\n<logformat f>\nport = x\n');
  assert.deepEqual(
    diagnostics.map((d) => [d.at.line, d.message]),
    [[3, '<logformat f> is never closed']],
  );
});

test('a section header inside an unclosed block closes it with an error, and the section still counts', () => {
  const diagnostics = problems('<logformat f>\nport = x\n[d]\nsequence = 0\n');
  assert.deepEqual(
    diagnostics.map((d) => [d.at.line, d.message]),
    [
      [1, '<logformat f> is not closed before the section [d] at line 3'],
      [4, 'Sequence: port "0" is invalid: ports are 1-65535'],
    ],
  );
});

test('nested open, unnamed and badly named blocks, stray close and unknown tags are errors', () => {
  const diagnostics = problems(
    ['<logformat a>', 'port = 1', '<logformat b>', 'port = 2', '</logformat>', '<logformat>', '</logformat>', '<logformat my format>', '</logformat>', '</logformat>', '<format x>'].join('\n'),
  );
  assert.deepEqual(
    diagnostics.map((d) => [d.at.line, d.message]),
    [
      [3, '<logformat> opened inside <logformat a> (line 1)'],
      [6, '<logformat> needs a name'],
      [8, 'logformat name "my format" is invalid'],
      [10, '</logformat> without an open <logformat NAME>'],
      [11, '"<format x>" is not a <logformat NAME> or </logformat> tag'],
    ],
  );
});

test('duplicate block names in one file are an error', () => {
  const p = problem('<logformat f>\nport = 1\n</logformat>\n<logformat f>\nport = 2\n</logformat>\n');
  assert.equal(p.at.line, 4);
  assert.equal(p.message, '<logformat f> is defined twice in this file');
  assert.equal(p.hint, 'rename one; the first is at line 1');
});

test('parseFormatFile: a realistic format file gives its blocks in order', () => {
  const path = fixture('conf', 'format-iptables.conf');
  const blocks = parseFormatFile(readFileSync(path, 'utf8'), path);
  assert.deepEqual(
    blocks.map((block) => [block.name, block.at.line, Object.keys(block.fields)]),
    [
      ['example-iptables', 4, ['required', 'interface', 'ipclient', 'ipserver', 'protocol', 'sport', 'port']],
      ['example-nftables', 14, ['required', 'ipclient', 'port']],
    ],
  );
  assert.equal(blocks[0]!.fields.ipclient!.pattern, '\\ SRC=(?<ipclient>[0-9a-f.:]+)\\ ');
  assert.equal(blocks[0]!.fields.port!.at.file, path);
});

test('parseFormatFile: anything outside a block is an error, as is a broken block', () => {
  const diagnostics = formatFileProblems('# ok\n[options]\nLogFile = x\n<logformat f>\nbogus = 1\n');
  assert.deepEqual(
    diagnostics.map((d) => [d.at.file, d.at.line, d.message]),
    [
      ['formats/x.conf', 2, '"[options]" is outside a <logformat> block'],
      ['formats/x.conf', 3, '"LogFile = x" is outside a <logformat> block'],
      ['formats/x.conf', 4, '<logformat f> is never closed'],
      ['formats/x.conf', 5, 'unknown logformat field "bogus"'],
    ],
  );
  assert.deepEqual(parseFormatFile('# nothing but comments\n\n', 'formats/empty.conf'), []);
});
