#!/usr/bin/env python3
"""Writes N varied firewall lines of one format (the same shapes as crates/parse/benches/parse.rs).

    bench/gen-lines.py iptables|pfsense|fortigate|asa N > FILE
"""
import sys

kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout
ports = [22, 23, 80, 443, 445, 3389, 8080, 5060]
for i in range(n):
    a = (i * 7919) % 250 + 1
    b = (i * 104729) % 250 + 1
    sport = 1024 + (i * 31) % 60000
    dport = ports[i % 8]
    mm, ss = (i // 60) % 60, i % 60
    if kind == "iptables":
        out.write(f"Nov 21 06:{mm:02}:{ss:02} fw kernel: [{100000 + i}.{i % 1000000:06}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.{a}.{b} DST=198.51.100.10 LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID={i} PROTO=TCP SPT={sport} DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0\n")
    elif kind == "pfsense":
        out.write(f"<134>1 2025-11-06T11:32:42.868451+00:00 firewall.lan filterlog 92653 - - 7,,,1000000102,vtnet0,match,block,in,4,0x0,,64,{i},0,DF,6,tcp,60,203.0.{a}.{b},198.51.100.10,{sport},{dport},0,S,523876198,,64240,,mss;sackOK;TS;nop;wscale\n")
    elif kind == "fortigate":
        out.write(f'date=2024-11-21 time=06:{mm:02}:{ss:02} devname="FGT-HQ" devid="FG100F0000000001" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" eventtime={1732168800 + i} srcip=203.0.{a}.{b} srcport={sport} srcintf="wan1" srcintfrole="wan" dstip=198.51.100.10 dstport={dport} dstintf="internal" dstintfrole="lan" sessionid={i} proto=6 action="deny" policyid=0 policytype="policy" service="tcp/{dport}" dstcountry="Reserved" srccountry="United Kingdom" trandisp="noop" duration=0 sentbyte=0 rcvdbyte=0 sentpkt=0 appcat="unscanned" crscore=30 craction=131072 crlevel="high"\n')
    elif kind == "asa":
        out.write(f'<164>Nov 21 2024 06:{mm:02}:{ss:02}: %ASA-4-106023: Deny tcp src outside:203.0.{a}.{b}/{sport} dst inside:198.51.100.10/{dport} by access-group "outside_access_in" [0x0, 0x0]\n')
    else:
        sys.exit(f"unknown kind {kind}")
