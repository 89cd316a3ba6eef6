//! Real firewall lines from the CrowdSec hub's test suites (MIT, see fixtures/crowdsec-hub/LICENSE),
//! checked against the field values CrowdSec's own parsers are asserted to extract.
//!
//! Every line must parse, and every asserted address, port, protocol and action must match.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use watchhouse_event::Action;
use watchhouse_parse::{parse_str, TimeContext};

/// (line index) -> field -> expected value, from `parser.assert`, only where CrowdSec's parser
/// reported success for that line.
fn expectations(assert: &str) -> BTreeMap<usize, BTreeMap<String, String>> {
    let mut ok: BTreeMap<(String, usize), bool> = BTreeMap::new();
    let mut fields: Vec<((String, usize), String, String)> = Vec::new();
    for line in assert.lines() {
        let Some(rest) = line.strip_prefix("results[\"") else {
            continue;
        };
        // Only the first parse stage indexes lines one to one; later stages drop failures.
        if !rest.starts_with("s01-parse") {
            continue;
        }
        // results["stage"]["parser"][i].…
        let parts: Vec<&str> = rest.splitn(3, "][").collect();
        if parts.len() < 3 {
            continue;
        }
        let node = format!(
            "{}/{}",
            parts[0].trim_end_matches('"'),
            parts[1].trim_matches('"')
        );
        let Some(close) = parts[2].find(']') else {
            continue;
        };
        let Ok(idx) = parts[2][..close].parse::<usize>() else {
            continue;
        };
        let tail = &parts[2][close + 1..];
        if tail == ".Success == true" {
            ok.insert((node.clone(), idx), true);
        } else if let Some(f) = tail.strip_prefix(".Evt.Parsed[\"") {
            let Some(q) = f.find("\"] == \"") else {
                continue;
            };
            let key = &f[..q];
            let val = f[q + 7..].trim_end_matches('"');
            fields.push(((node, idx), key.to_string(), val.to_string()));
        }
    }
    let mut out: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for ((node, idx), key, val) in fields {
        if !ok.get(&(node, idx)).copied().unwrap_or(false) {
            continue;
        }
        let key = match key.as_str() {
            "source_ip" => "src_ip",
            k @ ("src_ip" | "dst_ip" | "src_port" | "dst_port" | "proto" | "action") => k,
            _ => continue,
        };
        out.entry(idx).or_default().insert(key.to_string(), val);
    }
    out
}

fn action_matches(expected: &str, got: Action) -> bool {
    let e = expected.to_ascii_lowercase();
    if e.contains("accept") || e.contains("pass") || e.contains("allow") {
        got == Action::Allow
    } else if e.contains("reject") {
        got == Action::Reject
    } else if e.contains("drop") {
        got == Action::Drop
    } else {
        got != Action::Allow
    }
}

#[test]
fn crowdsec_hub_lines_yield_their_asserted_fields() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crowdsec-hub");
    // 2022-10-01: after every fixture's date, so RFC 3164 years resolve to 2022.
    let ctx = TimeContext::utc(1_664_582_400_000);
    let mut checked = 0;
    let mut lines_total = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let log = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let expect = expectations(&std::fs::read_to_string(dir.join("parser.assert")).unwrap());
        for (i, line) in lines.iter().enumerate() {
            lines_total += 1;
            let ev = parse_str(line, &ctx, None)
                .unwrap_or_else(|e| panic!("{}: line {i} unparsed ({e}): {line}", dir.display()));
            assert_eq!(ev.raw, *line);
            let Some(fields) = expect.get(&i) else {
                continue;
            };
            for (k, v) in fields {
                let ok = match k.as_str() {
                    "src_ip" => v.parse::<IpAddr>().ok() == Some(ev.src_ip),
                    "dst_ip" => v.parse::<IpAddr>().ok() == Some(ev.dst_ip),
                    "src_port" => v.parse::<u16>().ok() == ev.src_port,
                    "dst_port" => v.parse::<u16>().ok() == ev.dst_port,
                    "proto" => watchhouse_event::IpProto::parse(v) == Some(ev.protocol),
                    "action" => action_matches(v, ev.action),
                    _ => unreachable!(),
                };
                assert!(
                    ok,
                    "{}: line {i}: {k} expected {v}, got {ev:?}",
                    dir.display()
                );
                checked += 1;
            }
        }
    }
    assert!(lines_total >= 90, "only {lines_total} fixture lines found");
    assert!(checked >= 90, "only {checked} field expectations checked");
}
