#!/usr/bin/env python3
"""Writes N iptables lines whose sources are a realistic mix for the matcher benchmark:
PCT% taken from the merged list (hosts, or addresses inside its blocks), the rest random unicast
internet addresses. The destination is one fixed address that is on no list.

    bench/gen-intel-lines.py MERGED_LIST N PCT > FILE
"""
import ipaddress
import random
import sys

path, n, pct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261121)
nets = []
for line in open(path):
    line = line.strip()
    if line and not line.startswith("#"):
        nets.append(ipaddress.ip_network(line, strict=False))


def listed():
    net = nets[rng.randrange(len(nets))]
    return str(net.network_address + rng.randrange(net.num_addresses))


def public():
    while True:
        a = rng.getrandbits(32)
        o = a >> 24
        if 1 <= o < 224 and o not in (10, 127):
            return str(ipaddress.IPv4Address(a))


out = sys.stdout
for i in range(n):
    src = listed() if rng.randrange(100) < pct else public()
    out.write(
        f"Nov 21 06:{(i // 60) % 60:02}:{i % 60:02} fw kernel: [{100000 + i}.{i % 1000000:06}] [UFW BLOCK] "
        f"IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={src} DST=81.2.69.160 LEN=44 "
        f"TOS=0x00 PREC=0x00 TTL=49 ID={i} PROTO=TCP SPT={1024 + i % 60000} DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0\n"
    )
