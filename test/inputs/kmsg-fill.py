#!/usr/bin/env python3
"""Writes records into the kernel log through /dev/kmsg (root) until the ring buffer has been overwritten
`ROUNDS` times (its size from klogctl(SYSLOG_ACTION_SIZE_BUFFER)), for the /dev/kmsg loss tests.

usage: kmsg-fill.py TAG ROUNDS
Each record is `<14>TAG: ring filler N xxx…` (facility user: the kernel keeps it apart from its own). Each
write opens /dev/kmsg anew, because the kernel rate-limits writes per open file. Prints the count written and
the sequence number of the ring's last record after the writes (a reader that got that far has read them all).
"""
import ctypes
import errno
import os
import sys


def last_sequence_number():
    """Reads the ring from its oldest record to its end; returns the last record's number."""
    fd = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
    last = -1
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except OSError as error:
                if error.errno == errno.EPIPE:  # overwritten while reading: go on with the next one
                    continue
                if error.errno == errno.EAGAIN:
                    return last
                raise
            last = int(record.split(b';', 1)[0].split(b',')[1])
    finally:
        os.close(fd)


tag, rounds = sys.argv[1], int(sys.argv[2])
size = ctypes.CDLL(None, use_errno=True).klogctl(10, None, 0)
if size <= 0:
    sys.exit('klogctl(SYSLOG_ACTION_SIZE_BUFFER) failed')
record = 120
count = rounds * size // record + 100
for i in range(count):
    fd = os.open('/dev/kmsg', os.O_WRONLY)
    try:
        os.write(fd, b'<14>%s: ring filler %d %s\n' % (tag.encode(), i, b'x' * 80))
    finally:
        os.close(fd)
print(count, last_sequence_number())
