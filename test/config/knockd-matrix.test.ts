/**
 * spec/knockd-behaviour.md §11 case 34, the config acceptance matrix measured on knockd 0.8.
 * Each test names what knockd does; where knocktail deliberately differs the name says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_SYN } from '../../src/hit.js';
import { door, parse, problem, problems } from './support.js';

test('34a: "UseSyslog = yes" — knockd: line 2 syntax error; knocktail deliberately accepts it (syslog on)', () => {
  const config = parse('[options]\nUseSyslog = yes\n');
  assert.equal(config.options.useSyslog, true);
  assert.equal(config.optionsAt.useSyslog!.line, 2);
});

test('34b: "tcpflags = syn, ack" — knockd: unrecognized flag " ACK"; knocktail deliberately accepts SYN+ACK', () => {
  assert.deepEqual(door('sequence = 7000\ntcpflags = syn, ack').tcpFlags, { set: TCP_SYN | TCP_ACK, clear: 0 });
});

test('34c: "sequence=-1,65535" — knockd: accepted as 65535,65535; knocktail deliberately rejects -1', () => {
  const p = problem('[d]\nsequence=-1,65535\n');
  assert.equal(p.at.line, 2);
  assert.equal(p.message, 'Sequence: port "-1" is invalid: ports are 1-65535');
});

test('34d: 33 ports — knockd: too many ports; 32 ok (same)', () => {
  const ports = Array.from({ length: 33 }, (_, i) => 2000 + i);
  assert.equal(door(`sequence = ${ports.slice(0, 32).join(',')}`).sequence.length, 32);
  const p = problem(`[d]\nsequence = ${ports.join(',')}\n`);
  assert.match(p.message, /33 steps is too many: knockd allows at most 32/);
});

test('34e: "[Options]" then "logfile = x" — knockd: syntax error (same: error, hinting that only [options] is global)', () => {
  const [header, logfile] = problems('[Options]\nlogfile = x\n');
  assert.equal(header!.at.line, 1);
  assert.equal(header!.message, 'door [Options] has no Sequence');
  assert.equal(header!.hint, 'for the global section write [options] (lower case, no blanks)');
  assert.equal(logfile!.at.line, 2);
  assert.equal(logfile!.message, '"LogFile" belongs in [options], not in door [Options]');
  assert.match(logfile!.hint!, /only lower-case \[options\] is the global section/);
});

test('34f: a directive before any section — knockd: all directives must belong to a section (same)', () => {
  const p = problem('sequence = 7000\n[d]\nsequence = 7000\n');
  assert.equal(p.at.line, 1);
  assert.match(p.message, /"sequence" comes before any section/);
  assert.equal(problem('UseSyslog\n[options]\n').at.line, 1);
});

test('34g: a door without sequence — knockd: empty knock sequence (same)', () => {
  const p = problem('[d]\ncommand = true\n');
  assert.equal(p.at.line, 1);
  assert.match(p.message, /door \[d\] has no Sequence/);
});

test('34h: "sequence =" — knockd: port 0 accepted; knocktail deliberately rejects the empty sequence', () => {
  const p = problem('[d]\nsequence =\n');
  assert.equal(p.at.line, 2);
  assert.match(p.message, /^Sequence: the sequence is empty/);
});

test('34i: "SeQuEnCe = 1000:TCP, 2000 : UdP ,3000:tcp:junk" — knockd: 1000/tcp, 2000/udp, 3000/tcp (same, plus a warning for :junk)', () => {
  const config = parse('[d]\nSeQuEnCe = 1000:TCP, 2000 : UdP ,3000:tcp:junk\n');
  assert.deepEqual(config.doors[0]!.sequence, [
    { port: 1000, proto: 'tcp' },
    { port: 2000, proto: 'udp' },
    { port: 3000, proto: 'tcp' },
  ]);
  assert.equal(config.warnings.length, 1);
  assert.equal(config.warnings[0]!.at.line, 2);
  assert.match(config.warnings[0]!.message, /^Sequence: "3000:tcp:junk": everything after "3000:tcp" is ignored/);
});

test('34j: "[ options ]" is a door — knockd: door named " options " (same, with a warning)', () => {
  const config = parse('[ options ]\nsequence = 7000\n');
  assert.equal(config.doors[0]!.name, ' options ');
  assert.deepEqual(config.options, parse('').options);
  assert.equal(config.warnings.length, 1);
  assert.match(config.warnings[0]!.message, /\[ options \] starts a door named " options ", not the global section/);
});

test('34k: a CRLF file — knockd: accepted (same)', () => {
  const config = parse('[options]\r\n\tUseSyslog\r\n\r\n[openSSH]\r\n\tsequence = 7000,8000\r\n\tcommand = echo %IP%\r\n');
  assert.equal(config.options.useSyslog, true);
  assert.deepEqual(config.doors[0]!.sequence.map((s) => s.port), [7000, 8000]);
  assert.equal(config.doors[0]!.startCommand, 'echo %IP%');
});

test('34l: "sequence=1,2:" — knockd: unknown protocol in knock sequence (same)', () => {
  const p = problem('[d]\nsequence=1,2:\n');
  assert.equal(p.at.line, 2);
  assert.match(p.message, /^Sequence: protocol "" in "2:" is invalid: use tcp or udp/);
});
