#!/usr/bin/env python3
"""Creates a tun device of a chosen hardware type in this namespace and holds it, for the live-capture tests.

usage: tun-link.py NAME ppp|none
`none` is ARPHRD_NONE, the type of WireGuard (wg) interfaces; `ppp` is ARPHRD_PPP, the type of pppd's ppp
interfaces (set with TUNSETLINK while the device is down). libpcap picks the link type from this hardware type,
so a capture sees these devices as it sees wg0 and ppp0. Prints "ready" once the device exists, then holds it
open (its carrier is on, as a running link's is) until standard input closes; the device goes with it. The
device is multi-queue, so pcap-send.py can attach a queue of its own and write packets this namespace then
receives on it.
"""
import fcntl
import os
import struct
import sys

TUNSETIFF = 0x400454ca
TUNSETLINK = 0x400454cd
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
ARPHRD_PPP = 512

name, kind = sys.argv[1], sys.argv[2]
if kind not in ('ppp', 'none'):
    sys.exit(f'unknown kind {kind}: ppp or none')
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE))
if kind == 'ppp':
    fcntl.ioctl(fd, TUNSETLINK, ARPHRD_PPP)
print('ready', flush=True)
sys.stdin.read()
