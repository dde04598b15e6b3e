#!/usr/bin/env python3
"""Sends a flood of spoofed TCP SYNs through a raw socket (root), for the flood tests and benchmarks.

usage: syn-flood.py DST PORT RATE SOURCES SECONDS
  RATE     packets per second (paced in 10 ms slices; 0 = as fast as possible)
  SOURCES  distinct source addresses, taken in turn from 172.16.0.0/12 (at most 1048576)
Prints one JSON line when done: {"sent": N, "seconds": S, "rate": R}. Stops early on SIGTERM (and prints).

The packets are built once (IPv4 + TCP SYN, the kernel fills in the IP checksum; the TCP checksum is left 0,
which netfilter's LOG/NFLOG rules and the knock daemons do not look at), so the loop is only sendto():
about 170k packets/s on one core of the 2-core test VM, 100k/s paced.
"""
import json
import signal
import socket
import struct
import sys
import time

BASE = (172 << 24) | (16 << 16)


def main():
    dst, port, rate, sources, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    if not 0 < sources <= 1 << 20:
        sys.exit('SOURCES must be 1..1048576')
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    target = socket.inet_aton(dst)
    packets = [
        struct.pack('!BBHHHBBHI4sHHIIBBHHH', 0x45, 0, 40, 1, 0, 64, 6, 0, BASE + i, target, 40000 + (i & 0x3fff), port, i, 0, 0x50, 0x02, 64240, 0, 0)
        for i in range(sources)
    ]
    address = (dst, 0)
    send = sock.sendto
    sent = 0
    index = 0
    started = time.monotonic()
    while not stop:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(elapsed * rate) - sent if rate > 0 else 1000
        if due <= 0:
            time.sleep(0.001)
            continue
        for _ in range(min(due, 10000)):
            try:
                send(packets[index], address)
            except OSError:
                break
            index += 1
            if index == sources:
                index = 0
            sent += 1
    took = time.monotonic() - started
    print(json.dumps({'sent': sent, 'seconds': round(took, 3), 'rate': round(sent / took) if took > 0 else 0}), flush=True)


main()
