/** Rolling doors end to end in file mode: kernel LOG rules with the README's rate limit → rsyslog → kern.log → the daemon (rolling-door.ts). */
import { rollingDoorSuite } from './rolling-door.js';

rollingDoorSuite('file', 'krf', 221);
