//! Real firewall lines from the CrowdSec hub's test suites (MIT, see fixtures/crowdsec-hub/LICENSE),
//! checked against the field values CrowdSec's own parsers are asserted to extract.
//!
//! - Every line with asserted traffic fields must parse, and every asserted address, port,
//!   protocol and action must match.
//! - Every other line either parses (and then names only addresses that are in the line) or is
//!   refused with a reason; how many of each directory parse is pinned below, so a regression
//!   shows.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use watchhouse_event::{Action, Format};
use watchhouse_parse::{parse_str, TimeContext};

/// (directory, lines that must parse, the format they must be read as)
const EXPECTED: &[(&str, usize, Format)] = &[
    ("iptables-logs", 4, Format::Netfilter),
    ("iptables-scan-multi-port", 49, Format::Netfilter),
    ("proxmox-iptables-logs", 10, Format::Netfilter),
    ("pf-logs", 9, Format::Filterlog),
    ("pf-scan-multi-port", 16, Format::Filterlog),
    ("pfsense-rfc5424-filterlog", 4, Format::Filterlog),
    // One line is a login failure, not traffic.
    ("mikrotik-logs", 6, Format::MikroTik),
    ("mikrotik-scan-multi_ports", 19, Format::MikroTik),
    // One line is an sshd message.
    ("unifi-logs", 3, Format::Netfilter),
    // The admin-login events carry no destination; one IPS line omits dst.
    ("unifi-cef", 1, Format::Cef),
    ("cef-logs", 2, Format::Cef),
    ("palo-alto-threat", 2, Format::PanOs),
    // SSL-VPN login failures: understood, but not traffic.
    ("fortinet-vpn-bf", 0, Format::FortiGate),
    // Two are statistics records.
    ("suricata-logs-evelog", 6, Format::Suricata),
];

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
            "dest_ip" => "dst_ip",
            "dest_port" => "dst_port",
            k @ ("src_ip" | "dst_ip" | "src_port" | "dst_port" | "proto" | "action") => k,
            _ => continue,
        };
        out.entry(idx).or_default().insert(key.to_string(), val);
    }
    out
}

fn action_matches(expected: &str, got: Action) -> bool {
    let e = expected.to_ascii_lowercase();
    // UniFi rule tags: A(ccept), D(rop), R(eject).
    match e.as_str() {
        "a" => return got == Action::Allow,
        "d" => return got == Action::Drop,
        "r" => return got == Action::Reject,
        _ => {}
    }
    if e.contains("accept") || e.contains("pass") || e.contains("allow") || e == "alert" {
        got == Action::Allow
    } else if e.contains("reject") || e.starts_with("reset") {
        got == Action::Reject
    } else if e.contains("drop") {
        got == Action::Drop
    } else {
        got != Action::Allow
    }
}

fn line_has_ip(line: &str, ip: IpAddr) -> bool {
    line.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .flat_map(|t| [t, t.trim_matches(':')])
        .chain(line.split(|c: char| {
            c == ' ' || c == ',' || c == '"' || c == '=' || c == '[' || c == ']' || c == '>'
        }))
        .any(|t| {
            t.parse::<IpAddr>().ok() == Some(ip)
                || t.rsplit_once(':')
                    .and_then(|(a, _)| a.parse::<IpAddr>().ok())
                    == Some(ip)
                || t.split_once('/')
                    .and_then(|(a, _)| a.parse::<IpAddr>().ok())
                    == Some(ip)
        })
}

#[test]
fn crowdsec_hub_lines_yield_their_asserted_fields() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crowdsec-hub");
    let ctx = TimeContext::utc(1_790_000_000_000);
    let mut checked = 0;
    let mut seen_dirs = 0;
    for (dir_name, must_parse, format) in EXPECTED {
        let dir = root.join(dir_name);
        seen_dirs += 1;
        let log = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let expect = expectations(&std::fs::read_to_string(dir.join("parser.assert")).unwrap());
        let mut parsed = 0;
        for (i, line) in lines.iter().enumerate() {
            let result = parse_str(line, &ctx, None);
            if let Ok(ev) = &result {
                parsed += 1;
                assert_eq!(
                    ev.format, *format,
                    "{dir_name}: line {i} read as {:?}",
                    ev.format
                );
                assert_eq!(ev.raw, *line);
                assert!(
                    line_has_ip(line, ev.src_ip),
                    "{dir_name}: line {i}: src {} not in line",
                    ev.src_ip
                );
                assert!(
                    line_has_ip(line, ev.dst_ip),
                    "{dir_name}: line {i}: dst {} not in line",
                    ev.dst_ip
                );
            }
            let Some(fields) = expect.get(&i) else {
                continue;
            };
            // A line is a traffic record when a destination is asserted (a login failure names only a source).
            let traffic = fields.contains_key("dst_ip") || fields.contains_key("dst_port");
            if !traffic {
                continue;
            }
            let ev =
                result.unwrap_or_else(|e| panic!("{dir_name}: line {i} unparsed ({e}): {line}"));
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
                assert!(ok, "{dir_name}: line {i}: {k} expected {v}, got {ev:?}");
                checked += 1;
            }
        }
        assert_eq!(parsed, *must_parse, "{dir_name}: lines parsed");
    }
    let dirs_on_disk = std::fs::read_dir(&root)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(
        seen_dirs, dirs_on_disk,
        "every fixture directory has an entry in EXPECTED"
    );
    assert!(checked >= 150, "only {checked} field expectations checked");
}
