//! The port-scan sequences from the CrowdSec hub's tests (real lines, copied under
//! `crates/parse/tests/fixtures/crowdsec-hub/*scan*`), each with the alert CrowdSec expects:
//! parsed by Watchhouse's parsers and fed to the detection engine, the expected scanners are
//! reported as `port_scan`, and nothing else is.
//!
//! CrowdSec's iptables case expects two alerts: 62.34.17.168, and one of two loopback sources it
//! does not whitelist. Watchhouse never sees loopback traffic (the collector keeps traffic
//! between its own addresses on the member's network), so only the internet scanner matters
//! here; the engine itself reports every source that crosses the threshold.

use std::collections::BTreeSet;

use watchhouse_detect::{AlertKind, Engine, Thresholds};
use watchhouse_event::Direction;
use watchhouse_parse::{parse_str, TimeContext};

fn scanners(dir: &str) -> BTreeSet<String> {
    let path = format!(
        "{}/../parse/tests/fixtures/crowdsec-hub/{dir}/{dir}.log",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    // The lines carry 2023–2026 dates; the year of RFC 3164 lines comes from "now".
    let ctx = TimeContext::utc(1_790_000_000_000);
    let events: Vec<_> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut e = parse_str(l, &ctx, None).unwrap_or_else(|u| panic!("{dir}: {l}: {u:?}"));
            e.direction = Direction::Inbound;
            e
        })
        .collect();
    let mut engine = Engine::new(Thresholds::default());
    engine
        .observe(1, 1, dir, &events)
        .into_iter()
        .filter(|o| o.kind == AlertKind::PortScan)
        .map(|o| o.subject_ip.to_string())
        .collect()
}

#[test]
fn iptables_scan_multi_port() {
    let s = scanners("iptables-scan-multi-port");
    assert!(s.contains("62.34.17.168"), "{s:?}");
    assert!(
        s.iter()
            .all(|ip| ip == "62.34.17.168" || ip.starts_with("127.")),
        "{s:?}"
    );
}

#[test]
fn mikrotik_scan_multi_ports() {
    assert_eq!(
        scanners("mikrotik-scan-multi_ports"),
        BTreeSet::from(["36.97.161.219".to_owned()])
    );
}

#[test]
fn pf_scan_multi_port() {
    assert_eq!(
        scanners("pf-scan-multi-port"),
        BTreeSet::from(["10.0.2.2".to_owned()])
    );
}

#[test]
fn ordinary_traffic_in_the_fixtures_is_not_a_scan() {
    // Every other CrowdSec fixture (single connections, a few ports) stays below the threshold.
    let root = format!(
        "{}/../parse/tests/fixtures/crowdsec-hub",
        env!("CARGO_MANIFEST_DIR")
    );
    let ctx = TimeContext::utc(1_790_000_000_000);
    for d in std::fs::read_dir(&root).unwrap() {
        let d = d.unwrap().path();
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("scan") || !d.is_dir() {
            continue;
        }
        let mut events = Vec::new();
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "log") {
                for l in std::fs::read_to_string(&f).unwrap().lines() {
                    if let Ok(mut e) = parse_str(l, &ctx, None) {
                        e.direction = Direction::Inbound;
                        events.push(e);
                    }
                }
            }
        }
        let mut engine = Engine::new(Thresholds::default());
        let scans = engine
            .observe(1, 1, &name, &events)
            .into_iter()
            .filter(|o| o.kind == AlertKind::PortScan)
            .count();
        assert_eq!(scans, 0, "{name}");
    }
}
