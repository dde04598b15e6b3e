/** Rolling doors end to end in pcap mode: the daemon captures live on the server side of a veth pair (rolling-door.ts). */
import { rollingDoorSuite } from './rolling-door.js';

rollingDoorSuite('pcap', 'krp', 222);
