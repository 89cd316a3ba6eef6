//! Parse + normalise throughput per core, per format, on realistic varied lines.
//!
//! `cargo bench -p watchhouse-parse --bench parse` (bench/parse-vs-lognormalizer.sh runs the
//! same line sets through liblognorm's lognormalizer side by side).

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use watchhouse_parse::{parse_line, TimeContext};

/// Deterministic varied lines, so no branch predictor or cache sees one line over and over.
pub fn lines(kind: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let a = (i * 7919) % 250 + 1;
            let b = (i * 104729) % 250 + 1;
            let sport = 1024 + (i * 31) % 60000;
            let dport = [22, 23, 80, 443, 445, 3389, 8080, 5060][i % 8];
            match kind {
                "iptables" => format!(
                    "Nov 21 06:{:02}:{:02} fw kernel: [{}.{:06}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.{a}.{b} DST=198.51.100.10 LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID={i} PROTO=TCP SPT={sport} DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0",
                    (i / 60) % 60, i % 60, 100000 + i, i % 1000000
                ),
                "pfsense" => format!(
                    "<134>1 2025-11-06T11:32:42.868451+00:00 firewall.lan filterlog 92653 - - 7,,,1000000102,vtnet0,match,block,in,4,0x0,,64,{i},0,DF,6,tcp,60,203.0.{a}.{b},198.51.100.10,{sport},{dport},0,S,523876198,,64240,,mss;sackOK;TS;nop;wscale"
                ),
                "fortigate" => format!(
                    "date=2024-11-21 time=06:{:02}:{:02} devname=\"FGT-HQ\" devid=\"FG100F0000000001\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" eventtime={} srcip=203.0.{a}.{b} srcport={sport} srcintf=\"wan1\" srcintfrole=\"wan\" dstip=198.51.100.10 dstport={dport} dstintf=\"internal\" dstintfrole=\"lan\" sessionid={i} proto=6 action=\"deny\" policyid=0 policytype=\"policy\" service=\"tcp/{dport}\" dstcountry=\"Reserved\" srccountry=\"United Kingdom\" trandisp=\"noop\" duration=0 sentbyte=0 rcvdbyte=0 sentpkt=0 appcat=\"unscanned\" crscore=30 craction=131072 crlevel=\"high\"",
                    (i / 60) % 60, i % 60, 1_732_168_800 + i as u64
                ),
                "asa" => format!(
                    "<164>Nov 21 2024 06:{:02}:{:02}: %ASA-4-106023: Deny tcp src outside:203.0.{a}.{b}/{sport} dst inside:198.51.100.10/{dport} by access-group \"outside_access_in\" [0x0, 0x0]",
                    (i / 60) % 60, i % 60
                ),
                _ => unreachable!(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ctx = TimeContext::utc(1_733_011_200_000);
    let mut g = c.benchmark_group("parse");
    for kind in ["iptables", "pfsense", "fortigate", "asa"] {
        let input = lines(kind, 10_000);
        // Every line must parse: a benchmark of failures measures nothing useful.
        assert!(
            input
                .iter()
                .all(|l| parse_line(l.as_bytes(), &ctx, None).is_ok()),
            "{kind}"
        );
        g.throughput(Throughput::Elements(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("auto_detect", kind), &input, |b, input| {
            b.iter(|| {
                let mut n = 0usize;
                for l in input {
                    if let Ok(e) = parse_line(l.as_bytes(), &ctx, None) {
                        n += e.dst_port.unwrap_or(0) as usize;
                    }
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
