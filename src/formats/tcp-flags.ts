/**
 * TCP flags as firewalls write them in their logs, turned into the header's flag bits. Three notations exist and
 * cannot be confused with one another, so a format never has to say which one its lines use:
 * - words separated by blanks, the Linux kernel's (`SYN`, `ACK SYN `, `` for none);
 * - words separated by commas, MikroTik RouterOS's (`SYN`, `ACK,PSH`);
 * - one letter per flag, pf's filterlog (pfSense, OPNsense): `S`, `SA`, `FPU`, in the order F S R P A U E C.
 * A text of only flag letters is read as letters unless it is one three-letter flag word (`ECE` is the word: pf
 * prints each letter once, so it never writes `ECE`). The README's field table names the notations.
 */
import { parseFlagWords, TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_FLAG_NAMES, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../hit.js';

const WORD_BITS = new Map<string, number>(TCP_FLAG_NAMES);

/** pf's letters (print-tcp.c of filterlog): F S R P A U E C. */
const LETTER_BITS: ReadonlyMap<number, number> = new Map([
  [70 /* F */, TCP_FIN],
  [83 /* S */, TCP_SYN],
  [82 /* R */, TCP_RST],
  [80 /* P */, TCP_PSH],
  [65 /* A */, TCP_ACK],
  [85 /* U */, TCP_URG],
  [69 /* E */, TCP_ECE],
  [67 /* C */, TCP_CWR],
]);

/** The flag bits `text` names, or null when it holds anything but flags in one of the three notations. */
export function decodeTcpFlags(text: string): number | null {
  if (text.length === 3 && WORD_BITS.has(text)) return WORD_BITS.get(text)!;
  const letters = flagLetters(text);
  if (letters !== null) return letters;
  return text.indexOf(',') >= 0 ? commaWords(text) : parseFlagWords(text);
}

/** `SA` → SYN|ACK; null unless every character is a flag letter, each at most once. */
function flagLetters(text: string): number | null {
  if (text.length === 0 || text.length > LETTER_BITS.size) return null;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const bit = LETTER_BITS.get(text.charCodeAt(i));
    if (bit === undefined || (bits & bit) !== 0) return null;
    bits |= bit;
  }
  return bits;
}

/** `ACK,PSH` → bits: words between single commas, none empty. */
function commaWords(text: string): number | null {
  let bits = 0;
  let start = 0;
  for (;;) {
    let stop = text.indexOf(',', start);
    if (stop < 0) stop = text.length;
    const bit = WORD_BITS.get(text.slice(start, stop));
    if (bit === undefined) return null;
    bits |= bit;
    if (stop === text.length) return bits;
    start = stop + 1;
  }
}
