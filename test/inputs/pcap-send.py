#!/usr/bin/env python3
"""Sends hand-made TCP/UDP packets with raw sockets (root), for the live-capture tests.

usage: pcap-send.py JSON   (or - to read the JSON from standard input)
JSON = {"interval": seconds between packets, "packets": [{"src", "dst", "proto": "tcp"|"udp", "sport", "dport",
        "flags": "S"|"SA"|"F"|... (TCP), "ext": true (IPv6: put a destination-options header before TCP/UDP),
        "count": n (optional: n packets, source ports sport, sport+1, ...)} | {"sleep": seconds}
        | {"align": f (sleep until the clock's fraction of a second is f, at least 50 ms from now)}],
        "via": how the IP packets leave (default: raw IP sockets, routed by this namespace):
          {"tun": NAME}: written into the tun device NAME (tun-link.py's), so this namespace receives them on it;
          {"pppoe": IFACE, "mac": DST_MAC, "session": ID, "ppp": PROTOCOL (default: by IP version)}: in PPPoE
          session frames (RFC 2516) sent on IFACE to DST_MAC, as a PPPoE link carries them on its Ethernet NIC}
Prints nothing; exits non-zero on the first send that fails.
Adapted from spec/knockd-harness/send.py; IPv6 is sent with its own header (IPPROTO_RAW implies IPV6_HDRINCL).
"""
import fcntl
import json
import os
import socket
import struct
import sys
import time

FLAGS = {'F': 1, 'S': 2, 'R': 4, 'P': 8, 'A': 16, 'U': 32, 'E': 64, 'C': 128}


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return (~total) & 0xffff


def transport(p, pseudo):
    if p['proto'] == 'tcp':
        flags = 0
        for letter in p.get('flags', 'S'):
            flags |= FLAGS[letter]
        header = struct.pack('!HHIIBBHHH', p['sport'], p['dport'], 0x01020304, 0, 5 << 4, flags, 65535, 0, 0)
        number = 6
    else:
        payload = b'x'
        header = struct.pack('!HHHH', p['sport'], p['dport'], 8 + len(payload), 0) + payload
        number = 17
    summed = checksum(pseudo(number, len(header)) + header) or 0xffff
    offset = 16 if number == 6 else 6
    return number, header[:offset] + struct.pack('!H', summed) + header[offset + 2:]


def ipv4(p):
    src, dst = socket.inet_aton(p['src']), socket.inet_aton(p['dst'])
    number, l4 = transport(p, lambda n, length: src + dst + struct.pack('!BBH', 0, n, length))
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 0x1234, 0, 64, number, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return ip + l4


def ipv6(p):
    src, dst = socket.inet_pton(socket.AF_INET6, p['src']), socket.inet_pton(socket.AF_INET6, p['dst'])
    number, l4 = transport(p, lambda n, length: src + dst + struct.pack('!IxxxB', length, n))
    extension = b''
    first = number
    if p.get('ext'):
        extension = struct.pack('!BB6s', number, 0, b'\x01\x04\0\0\0\0')  # destination options, PadN
        first = 60
    return struct.pack('!IHBB16s16s', 6 << 28, len(extension) + len(l4), first, 64, src, dst) + extension + l4


def raw_sockets():
    v4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    return lambda packet, p: (v6 if ':' in p['dst'] else v4).sendto(packet, (p['dst'], 0))


TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100


def tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR)
    # A queue of its own on tun-link.py's multi-queue device.
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE))
    return lambda packet, p: os.write(fd, packet)


def pppoe(via):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((via['pppoe'], 0))
    dst_mac = bytes.fromhex(via['mac'].replace(':', ''))
    src_mac = sock.getsockname()[4]

    def send(packet, p):
        protocol = via.get('ppp', 0x0057 if ':' in p['dst'] else 0x0021)
        session = struct.pack('!BBHHH', 0x11, 0x00, via.get('session', 1), 2 + len(packet), protocol)
        sock.send(dst_mac + src_mac + struct.pack('!H', 0x8864) + session + packet)
    return send


def main():
    spec = json.loads(sys.stdin.read() if sys.argv[1] == '-' else sys.argv[1])
    via = spec.get('via')
    deliver = raw_sockets() if via is None else tun(via['tun']) if 'tun' in via else pppoe(via)
    for template in spec['packets']:
        if 'sleep' in template:
            time.sleep(template['sleep'])
            continue
        if 'align' in template:
            wait = (template['align'] - time.time() % 1) % 1
            time.sleep(wait + 1 if wait < 0.05 else wait)
            continue
        for i in range(template.get('count', 1)):
            p = dict(template, sport=template['sport'] + i)
            deliver((ipv6 if ':' in p['dst'] else ipv4)(p), p)
            if spec.get('interval'):
                time.sleep(spec['interval'])


main()
