#!/usr/bin/env python3
"""A day of inbound denies from a scanning botnet, as one member's UFW log (N lines, default 1M).

2,000 bots; each wakes at random times through the day and sweeps a few favourite ports on the
member's four public addresses; every probe is a SYN that the firewall drops and the bot
retransmits once or twice (1 s, then 2 s later), as real scanners and TCP stacks do.

    bench/gen-botnet-day.py [N] > FILE
"""
import random, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rnd = random.Random(20261121)
bots = [f"{rnd.choice([45, 61, 89, 103, 176, 185, 194, 212])}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(2000)]
ports = [23, 2323, 22, 445, 3389, 80, 8080, 5555, 1433, 3306, 5900, 8443, 81, 7547, 37215]
targets = [f"198.51.100.{h}" for h in (10, 11, 12, 13)]
day0 = 1_763_683_200  # 2025-11-21T00:00:00Z
events = []
while len(events) < n:
    bot = rnd.choice(bots)
    t = day0 + rnd.randrange(86_400)
    favourite = rnd.sample(ports, 3)
    sport = rnd.randrange(1024, 65535)
    for dst in targets:
        for p in favourite:
            t += rnd.randrange(0, 2)
            for retry in range(rnd.choice([1, 2, 3])):
                events.append((t + (0, 1, 3)[retry], bot, dst, p, sport))
events = sorted(events[:n])
out = sys.stdout
for i, (t, src, dst, p, sport) in enumerate(events):
    hh, mm, ss = (t - day0) // 3600, (t - day0) // 60 % 60, (t - day0) % 60
    out.write(f"Nov 21 {hh:02}:{mm:02}:{ss:02} fw kernel: [{t - day0 + 1000}.{i % 1000000:06}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID={i % 65536} PROTO=TCP SPT={sport} DPT={p} WINDOW=1024 RES=0x00 SYN URGP=0\n")
