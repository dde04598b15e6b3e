/** Encrypted doors end to end in file mode: kernel LOG rules with the README's rate limit → rsyslog → kern.log → the daemon (encrypted-door.ts). */
import { encryptedDoorSuite } from './encrypted-door.js';

encryptedDoorSuite('file', 'kef', 223);
