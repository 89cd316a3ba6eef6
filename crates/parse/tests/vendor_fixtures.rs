//! One or more lines per vendor format, written from each vendor's public log-format
//! documentation (the `source` of each case names it), with the fields they must yield — or the
//! reason they must be refused. Real-world lines for the vendors CrowdSec's hub covers are in
//! `crowdsec_fixtures.rs`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;
use watchhouse_event::{Action, Format, IpProto};
use watchhouse_parse::{parse_str, TimeContext};

#[test]
fn documented_vendor_lines_yield_their_fields() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("fixtures/vendors.json")).unwrap();
    // 2024-12-01T00:00:00Z: after every fixture's date, so RFC 3164 years resolve.
    let ctx = TimeContext::utc(1_733_011_200_000);
    let mut formats = BTreeSet::new();
    let mut checks = 0;
    for c in &cases {
        let line = c["line"].as_str().unwrap();
        let source = c["source"].as_str().unwrap();
        let format = Format::from_name(c["format"].as_str().unwrap()).unwrap();
        formats.insert(format);
        let result = parse_str(line, &ctx, None);
        if let Some(reason) = c.get("reason").and_then(Value::as_str) {
            let err = result.expect_err(source);
            assert_eq!(err.reason.code(), reason, "{source}");
            assert_eq!(err.format, Some(format), "{source}: attributed format");
            // Forcing the right format gives the same answer.
            assert_eq!(
                parse_str(line, &ctx, Some(format))
                    .unwrap_err()
                    .reason
                    .code(),
                reason
            );
            checks += 1;
            continue;
        }
        let e = result.unwrap_or_else(|err| panic!("{source}: {err}"));
        assert_eq!(e.format, format, "{source}");
        assert_eq!(e.raw, line);
        let ip = |k: &str| c[k].as_str().map(|s| s.parse::<IpAddr>().unwrap());
        let port = |k: &str| c[k].as_u64().map(|p| p as u16);
        assert_eq!(Some(e.src_ip), ip("src"), "{source}: src");
        assert_eq!(Some(e.dst_ip), ip("dst"), "{source}: dst");
        assert_eq!(e.src_port, port("sport"), "{source}: sport");
        assert_eq!(e.dst_port, port("dport"), "{source}: dport");
        let action = match c["action"].as_str().unwrap() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            "drop" => Action::Drop,
            "reject" => Action::Reject,
            other => panic!("bad fixture action {other}"),
        };
        assert_eq!(e.action, action, "{source}: action");
        checks += 5;
        if let Some(p) = c["proto"].as_str() {
            assert_eq!(Some(e.protocol), IpProto::parse(p), "{source}: proto");
            checks += 1;
        }
        let nat = e.nat.clone().unwrap_or_default();
        for (k, got) in [("nat_src", nat.src_ip), ("nat_dst", nat.dst_ip)] {
            if let Some(want) = ip(k) {
                assert_eq!(got, Some(want), "{source}: {k}");
                checks += 1;
            }
        }
        if let Some(want) = port("nat_sport") {
            assert_eq!(nat.src_port, Some(want), "{source}: nat_sport");
            checks += 1;
        }
        if e.nat.is_some() && c.get("nat_src").is_none() && c.get("nat_dst").is_none() {
            panic!("{source}: unexpected NAT {:?}", e.nat);
        }
        for (k, got) in [
            ("in_iface", e.in_iface.clone()),
            ("out_iface", e.out_iface.clone()),
            ("rule", e.rule.clone()),
            ("device", e.device.clone()),
            ("product", e.product.clone()),
        ] {
            if let Some(want) = c[k].as_str() {
                assert_eq!(got.as_deref(), Some(want), "{source}: {k}");
                checks += 1;
            }
        }
        for (k, got) in [("bytes", e.bytes), ("packets", e.packets)] {
            if let Some(want) = c[k].as_u64() {
                assert_eq!(got, Some(want), "{source}: {k}");
                checks += 1;
            }
        }
        if let Some(t) = c["time"].as_i64() {
            assert_eq!(e.time_ms, t, "{source}: time");
            checks += 1;
        }
        // OCSF rendering carries the fields through.
        let o = e.to_ocsf();
        assert_eq!(o["class_uid"], 4001);
        assert_eq!(o["src_endpoint"]["ip"], e.src_ip.to_string());
    }
    let missing: Vec<_> = Format::ALL
        .iter()
        .filter(|f| !formats.contains(f) && **f != Format::Filterlog)
        .collect();
    assert!(
        missing.is_empty(),
        "formats without a documented fixture: {missing:?}"
    );
    assert!(checks >= 290, "{checks} checks");
}
