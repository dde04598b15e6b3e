import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeTcpFlags } from '../../src/formats/tcp-flags.js';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../../src/hit.js';

describe('decodeTcpFlags', () => {
  it('reads the kernel\'s blank-separated words, as before', () => {
    assert.equal(decodeTcpFlags('SYN '), TCP_SYN);
    assert.equal(decodeTcpFlags('ACK SYN '), TCP_ACK | TCP_SYN);
    assert.equal(decodeTcpFlags('URG PSH FIN '), TCP_URG | TCP_PSH | TCP_FIN);
    assert.equal(decodeTcpFlags(''), 0);
    assert.equal(decodeTcpFlags('CWR ECE ACK'), TCP_CWR | TCP_ECE | TCP_ACK);
  });

  it('reads RouterOS\'s comma lists', () => {
    assert.equal(decodeTcpFlags('SYN'), TCP_SYN);
    assert.equal(decodeTcpFlags('ACK,PSH'), TCP_ACK | TCP_PSH);
    assert.equal(decodeTcpFlags('ACK,FIN,PSH'), TCP_ACK | TCP_FIN | TCP_PSH);
    assert.equal(decodeTcpFlags('SYN,ACK'), TCP_SYN | TCP_ACK);
  });

  it('reads pf\'s letters, each flag once', () => {
    assert.equal(decodeTcpFlags('S'), TCP_SYN);
    assert.equal(decodeTcpFlags('SA'), TCP_SYN | TCP_ACK);
    assert.equal(decodeTcpFlags('FSRPAUEC'), 0xff);
    assert.equal(decodeTcpFlags('R'), TCP_RST);
    assert.equal(decodeTcpFlags('EC'), TCP_ECE | TCP_CWR);
  });

  it('a three-letter flag word is the word, never letters (ECE is ECN-Echo, not E+C+E)', () => {
    assert.equal(decodeTcpFlags('ECE'), TCP_ECE);
    assert.equal(decodeTcpFlags('CWR'), TCP_CWR);
  });

  it('refuses anything else: unknown words or letters, repeated letters, empty list items, mixed separators', () => {
    for (const text of ['SYN XYZ', 'SS', 'SAX', 'ACK,', ',ACK', 'ACK,,PSH', 'ACK,PSH SYN', 'syn', 's', 'SYN;ACK', 'FSRPAUECF']) {
      assert.equal(decodeTcpFlags(text), null, text);
    }
  });
});
