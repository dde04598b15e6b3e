#!/usr/bin/env python3
"""
A second implementation of docs/rolling-sequences.md, written from the document alone, so that a test can
show the document is enough to build a compatible client in another language.

Reads JSON from stdin: a list of {"secret": HEX of the key file's bytes, "door": NAME, "time": UNIX SECONDS,
"period": SECONDS, "low": N, "high": N, "proto": "tcp"|"udp", "length": N}; writes a JSON list of
{"period": T, "ports": [..], "protocol": ..., "next": [..]} in the same order.
"""
import hashlib
import hmac
import json
import struct
import sys


def key_from_file_bytes(content: bytes) -> bytes:
    # One trailing LF, or CRLF, is not part of the key.
    if content.endswith(b"\r\n"):
        return content[:-2]
    if content.endswith(b"\n"):
        return content[:-1]
    return content


def sequence(key: bytes, door: str, period: int, low: int, high: int, length: int) -> list:
    name = door.encode("utf-8")
    size = high - low + 1
    bound = 2**32 - (2**32 % size)
    ports = []
    block = 0
    while len(ports) < length:
        message = b"knocktail-rolling-v1" + struct.pack(">H", len(name)) + name + struct.pack(">QI", period, block)
        digest = hmac.new(key, message, hashlib.sha256).digest()
        for offset in range(0, 32, 4):
            if len(ports) == length:
                break
            (word,) = struct.unpack(">I", digest[offset : offset + 4])
            if word >= bound:
                continue
            port = low + word % size
            if ports and abs(port - ports[-1]) == 1:
                continue
            if port not in ports:
                ports.append(port)
        block += 1
    return ports


def main() -> None:
    out = []
    for case in json.load(sys.stdin):
        key = key_from_file_bytes(bytes.fromhex(case["secret"]))
        period = int(case["time"] // case["period"])
        args = (case["low"], case["high"], case["length"])
        out.append(
            {
                "period": period,
                "ports": sequence(key, case["door"], period, *args),
                "protocol": case["proto"],
                "next": sequence(key, case["door"], period + 1, *args),
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
