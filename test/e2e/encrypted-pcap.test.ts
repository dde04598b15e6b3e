/** Encrypted doors end to end in pcap mode: the daemon captures live on the server side of a veth pair (encrypted-door.ts). */
import { encryptedDoorSuite } from './encrypted-door.js';

encryptedDoorSuite('pcap', 'kep', 224);
