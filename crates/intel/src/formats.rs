//! Feed formats: from a feed's bytes to indicators, pure.
//!
//! Every reader skips and counts what it cannot use (with a few samples) and keeps everything
//! else: a malformed entry never poisons a feed. Readers are bounded — a line longer than
//! [`MAX_LINE`] is skipped, JSON nesting is limited by `serde_json`'s recursion limit — and the
//! caller bounds the total size before calling.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::indicator::{Indicator, IndicatorValue, Tlp};
use crate::stix;

/// Longest line a line-oriented reader looks at; longer ones are skipped and counted.
pub const MAX_LINE: usize = 64 * 1024;

/// The formats Watchhouse reads. TAXII collections and MISP feeds are fetched object by object
/// (see [`parse_taxii_envelope`] and [`parse_misp_event`]); the others are one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    /// One address or block per line; `#` and `;` comments (FireHOL `.ipset`/`.netset`,
    /// Spamhaus DROP text, the Tor bulk exit list, most plain lists).
    Netset,
    /// Spamhaus DROP/EDROP JSON lines (`{"cidr":…,"sblid":…}` and a metadata line).
    SpamhausJson,
    /// abuse.ch Feodo Tracker IP blocklist CSV.
    FeodoCsv,
    /// abuse.ch ThreatFox CSV export.
    ThreatfoxCsv,
    /// abuse.ch URLhaus CSV export.
    UrlhausCsv,
    /// The Tor Project's `exit-addresses` (`ExitAddress <ip> <date>` lines) or bulk exit list.
    TorExits,
    /// One domain per line.
    Domains,
    /// A STIX 2.1 bundle.
    Stix,
    /// A TAXII 2.1 collection, polled with `added_after`.
    Taxii,
    /// A MISP feed: `manifest.json` and one JSON file per event.
    Misp,
}

impl FeedFormat {
    /// Every format.
    pub const ALL: &'static [FeedFormat] = &[
        FeedFormat::Netset,
        FeedFormat::SpamhausJson,
        FeedFormat::FeodoCsv,
        FeedFormat::ThreatfoxCsv,
        FeedFormat::UrlhausCsv,
        FeedFormat::TorExits,
        FeedFormat::Domains,
        FeedFormat::Stix,
        FeedFormat::Taxii,
        FeedFormat::Misp,
    ];

    /// Stable name, as in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Netset => "netset",
            FeedFormat::SpamhausJson => "spamhaus_json",
            FeedFormat::FeodoCsv => "feodo_csv",
            FeedFormat::ThreatfoxCsv => "threatfox_csv",
            FeedFormat::UrlhausCsv => "urlhaus_csv",
            FeedFormat::TorExits => "tor_exits",
            FeedFormat::Domains => "domains",
            FeedFormat::Stix => "stix",
            FeedFormat::Taxii => "taxii",
            FeedFormat::Misp => "misp",
        }
    }

    /// Parses [`FeedFormat::as_str`].
    pub fn from_name(s: &str) -> Option<FeedFormat> {
        FeedFormat::ALL.iter().copied().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reader skipped, with samples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Indicators produced.
    pub accepted: usize,
    /// Entries skipped (malformed, unsupported type, too long).
    pub skipped: usize,
    /// Up to [`Report::MAX_SAMPLES`] skipped entries: where and why.
    pub samples: Vec<String>,
}

impl Report {
    /// Samples kept.
    pub const MAX_SAMPLES: usize = 10;

    /// Counts a skipped entry.
    pub fn skip(&mut self, at: impl fmt::Display, why: impl fmt::Display) {
        self.skipped += 1;
        if self.samples.len() < Report::MAX_SAMPLES {
            self.samples.push(format!("{at}: {why}"));
        }
    }

    /// Adds another report's counts.
    pub fn merge(&mut self, o: Report) {
        self.accepted += o.accepted;
        self.skipped += o.skipped;
        for s in o.samples {
            if self.samples.len() < Report::MAX_SAMPLES {
                self.samples.push(s);
            }
        }
    }
}

/// A feed that could not be read at all (as opposed to entries skipped inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError(pub String);

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FeedError {}

/// The metadata a FireHOL-style list carries in its comment header (`# Category : attacks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedHeader {
    /// The list's own name (the first non-empty comment line).
    pub name: Option<String>,
    /// `Category`.
    pub category: Option<String>,
    /// `Maintainer`.
    pub maintainer: Option<String>,
    /// `Maintainer URL`.
    pub maintainer_url: Option<String>,
    /// `Source File Date` or `This File Date`.
    pub date: Option<String>,
    /// The first number of `Entries` (subnets or unique IPs).
    pub entries: Option<usize>,
}

/// Reads the comment header at the top of a FireHOL-style list; absent fields stay `None`.
pub fn firehol_header(text: &str) -> FeedHeader {
    let mut h = FeedHeader::default();
    for line in text.lines().take(200) {
        let Some(c) = line.strip_prefix('#') else {
            break;
        };
        let c = c.trim();
        if c.is_empty() {
            continue;
        }
        match c.split_once(':') {
            Some((k, v)) if !k.contains("//") => {
                let v = crate::clip(v.trim()).to_owned();
                if v.is_empty() {
                    continue;
                }
                match k.trim() {
                    "Category" => h.category = Some(v),
                    "Maintainer" => h.maintainer = Some(v),
                    "Maintainer URL" => h.maintainer_url = Some(v),
                    "Source File Date" => h.date = Some(v),
                    "This File Date" if h.date.is_none() => h.date = Some(v),
                    "Entries" => {
                        h.entries = v
                            .split(|c: char| !c.is_ascii_digit())
                            .next()
                            .and_then(|n| n.parse().ok())
                    }
                    _ => {}
                }
            }
            _ => {
                if h.name.is_none() && !c.contains(' ') {
                    h.name = Some(crate::clip(c).to_owned());
                }
            }
        }
    }
    h
}

/// Guesses a single-file feed's format from its first bytes: JSON bundle → STIX, JSON lines
/// with `cidr` → Spamhaus, abuse.ch CSV headers, Tor `ExitNode` records, a list of names →
/// domains, otherwise a plain address list.
pub fn sniff(bytes: &[u8]) -> FeedFormat {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]);
    let t = head.trim_start();
    if t.starts_with('{') && t.contains("\"cidr\"") {
        return FeedFormat::SpamhausJson;
    }
    if t.starts_with('{') || t.starts_with('[') {
        return FeedFormat::Stix;
    }
    if head.contains("\"dst_ip\"") {
        return FeedFormat::FeodoCsv;
    }
    if head.contains("ioc_value") {
        return FeedFormat::ThreatfoxCsv;
    }
    if head.contains("urlhaus_link") {
        return FeedFormat::UrlhausCsv;
    }
    if head.contains("ExitAddress ") {
        return FeedFormat::TorExits;
    }
    let first = head
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    match first {
        Some(l)
            if l.parse::<crate::Cidr>().is_err()
                && crate::indicator::normalise_domain(l.split('#').next().unwrap_or(""))
                    .is_some() =>
        {
            FeedFormat::Domains
        }
        _ => FeedFormat::Netset,
    }
}

/// IPv4 addresses written in `line` (dotted quads not part of a longer number or address),
/// for grep-style filtering of arbitrary log lines.
pub fn ipv4_tokens(line: &[u8]) -> impl Iterator<Item = std::net::Ipv4Addr> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < line.len() {
            if !line[i].is_ascii_digit()
                || (i > 0 && (line[i - 1].is_ascii_digit() || line[i - 1] == b'.'))
            {
                i += 1;
                continue;
            }
            let start = i;
            let mut octets = [0u32; 4];
            let mut k = 0;
            let mut j = i;
            let ok = loop {
                let ds = j;
                let mut v = 0u32;
                while j < line.len() && line[j].is_ascii_digit() && j - ds < 3 {
                    v = v * 10 + (line[j] - b'0') as u32;
                    j += 1;
                }
                if j == ds || v > 255 || (j < line.len() && line[j].is_ascii_digit()) {
                    break false;
                }
                octets[k] = v;
                k += 1;
                if k == 4 {
                    // Not followed by `.digit` (a longer dotted number).
                    break !(j + 1 < line.len() && line[j] == b'.' && line[j + 1].is_ascii_digit());
                }
                if j < line.len() && line[j] == b'.' {
                    j += 1;
                } else {
                    break false;
                }
            };
            if ok {
                i = j;
                return Some(std::net::Ipv4Addr::new(
                    octets[0] as u8,
                    octets[1] as u8,
                    octets[2] as u8,
                    octets[3] as u8,
                ));
            }
            // Skip past this run of digits and dots.
            i = start + 1;
            while i < line.len() && (line[i].is_ascii_digit() || line[i] == b'.') {
                i += 1;
            }
        }
        None
    })
}

/// Reads a single-file feed. `Taxii` and `Misp` are multi-request protocols: pass their parts
/// to [`parse_taxii_envelope`] / [`parse_misp_event`] instead; here they are an error.
pub fn parse(format: FeedFormat, bytes: &[u8]) -> Result<(Vec<Indicator>, Report), FeedError> {
    let mut out = Vec::new();
    let mut rep = Report::default();
    match format {
        FeedFormat::Netset => lines(bytes, &mut rep, |line, rep, n| {
            let entry = line.split(['#', ';']).next().unwrap_or("").trim();
            if entry.is_empty() {
                return;
            }
            match entry.parse::<crate::Cidr>() {
                Ok(c) => out.push(Indicator::new(IndicatorValue::Ip(c))),
                Err(e) => rep.skip(format_args!("line {n}"), e),
            }
        }),
        FeedFormat::Domains => lines(bytes, &mut rep, |line, rep, n| {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                return;
            }
            match crate::indicator::normalise_domain(entry) {
                Some(d) => out.push(Indicator::new(IndicatorValue::Domain(d))),
                None => rep.skip(format_args!("line {n}"), "not a domain name"),
            }
        }),
        FeedFormat::TorExits => lines(bytes, &mut rep, |line, rep, n| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return;
            }
            let entry = match line.strip_prefix("ExitAddress ") {
                Some(rest) => rest.split_whitespace().next().unwrap_or(""),
                None if line.contains(' ') => return, // ExitNode / Published / LastStatus lines
                None => line,
            };
            match entry.parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    let mut i = Indicator::new(IndicatorValue::Ip(crate::Cidr::host(ip)));
                    i.category = Some("tor_exit".into());
                    out.push(i)
                }
                Err(_) => rep.skip(format_args!("line {n}"), "not an IP address"),
            }
        }),
        FeedFormat::SpamhausJson => lines(bytes, &mut rep, |line, rep, n| {
            let line = line.trim();
            if line.is_empty() {
                return;
            }
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => return rep.skip(format_args!("line {n}"), e),
            };
            if v.get("type").and_then(Value::as_str) == Some("metadata") {
                return;
            }
            match v
                .get("cidr")
                .and_then(Value::as_str)
                .map(str::parse::<crate::Cidr>)
            {
                Some(Ok(c)) => {
                    let mut i = Indicator::new(IndicatorValue::Ip(c));
                    i.description = v.get("sblid").and_then(Value::as_str).map(str::to_owned);
                    i.source_id = i.description.clone();
                    out.push(i)
                }
                Some(Err(e)) => rep.skip(format_args!("line {n}"), e),
                None => rep.skip(format_args!("line {n}"), "no `cidr`"),
            }
        }),
        FeedFormat::FeodoCsv => csv(bytes, &mut rep, |f, rep, n| {
            // first_seen_utc, dst_ip, dst_port, c2_status, last_online, malware
            if f.len() < 2 {
                return rep.skip(format_args!("line {n}"), "too few fields");
            }
            match f[1].parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    let mut i = Indicator::new(IndicatorValue::Ip(crate::Cidr::host(ip)));
                    i.category = Some("botnet_c2".into());
                    i.first_seen_ms = f.first().and_then(|s| utc_ms(s));
                    i.description = f.get(5).filter(|s| !s.is_empty()).map(|s| s.to_string());
                    out.push(i)
                }
                Err(_) => rep.skip(format_args!("line {n}"), "dst_ip is not an IP address"),
            }
        }),
        FeedFormat::ThreatfoxCsv => csv(bytes, &mut rep, |f, rep, n| {
            // first_seen_utc, ioc_id, ioc_value, ioc_type, threat_type, fk_malware,
            // malware_alias, malware_printable, last_seen_utc, confidence_level, …
            if f.len() < 10 {
                return rep.skip(format_args!("line {n}"), "too few fields");
            }
            let value = match f[3].as_str() {
                "ip:port" => f[2]
                    .rsplit_once(':')
                    .map(|(ip, _)| ip.trim_matches(['[', ']']))
                    .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                    .map(|ip| IndicatorValue::Ip(crate::Cidr::host(ip))),
                "domain" => crate::indicator::normalise_domain(&f[2]).map(IndicatorValue::Domain),
                "url" => crate::indicator::normalise_url(&f[2]).map(IndicatorValue::Url),
                other => {
                    return rep.skip(
                        format_args!("line {n}"),
                        format_args!("indicator type `{}` is not matched", crate::clip(other)),
                    )
                }
            };
            let Some(value) = value else {
                return rep.skip(
                    format_args!("line {n}"),
                    "ioc_value does not match ioc_type",
                );
            };
            let mut i = Indicator::new(value);
            i.category = Some(f[4].clone()).filter(|s| !s.is_empty());
            i.confidence = f[9].parse::<u8>().ok().map(|c| c.min(100));
            i.first_seen_ms = utc_ms(&f[0]);
            i.description = Some(f[7].clone()).filter(|s| !s.is_empty());
            i.source_id = Some(format!("threatfox:{}", f[1]));
            out.push(i)
        }),
        FeedFormat::UrlhausCsv => csv(bytes, &mut rep, |f, rep, n| {
            // id, dateadded, url, url_status, last_online, threat, tags, urlhaus_link, reporter
            if f.len() < 6 {
                return rep.skip(format_args!("line {n}"), "too few fields");
            }
            match crate::indicator::normalise_url(&f[2]) {
                Some(u) => {
                    let mut i = Indicator::new(IndicatorValue::Url(u));
                    i.category = Some(f[5].clone()).filter(|s| !s.is_empty());
                    i.first_seen_ms = utc_ms(&f[1]);
                    i.source_id = Some(format!("urlhaus:{}", f[0]));
                    // Offline URLs stay listed (the host often comes back) at lower confidence.
                    i.confidence = Some(if f[3] == "online" { 80 } else { 50 });
                    out.push(i)
                }
                None => rep.skip(format_args!("line {n}"), "not a usable URL"),
            }
        }),
        FeedFormat::Stix => {
            let bundle: Value = serde_json::from_slice(bytes)
                .map_err(|e| FeedError(format!("not a JSON STIX bundle: {e}")))?;
            if bundle.get("type").and_then(Value::as_str) != Some("bundle") {
                return Err(FeedError(
                    "not a STIX bundle (`type` is not `bundle`)".into(),
                ));
            }
            let objects = bundle
                .get("objects")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            stix_objects(objects, &mut out, &mut rep);
        }
        FeedFormat::Taxii | FeedFormat::Misp => {
            return Err(FeedError(format!(
                "{format} feeds are fetched in parts; use their own readers"
            )))
        }
    }
    rep.accepted = out.len();
    Ok((out, rep))
}

/// Runs `f` over each line (1-based numbers), skipping over-long ones. Bytes that are not UTF-8
/// are replaced, so a bad byte costs one entry at most.
fn lines(bytes: &[u8], rep: &mut Report, mut f: impl FnMut(&str, &mut Report, usize)) {
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.len() > MAX_LINE {
            rep.skip(format_args!("line {}", i + 1), "line too long");
            continue;
        }
        let line = String::from_utf8_lossy(raw);
        f(line.trim_end_matches('\r'), rep, i + 1);
    }
}

/// Runs `f` over the records of an abuse.ch-style CSV: `#` comment lines, double-quoted fields
/// (`""` inside), fields separated by `,` or `", "`.
fn csv(bytes: &[u8], rep: &mut Report, mut f: impl FnMut(&[String], &mut Report, usize)) {
    let mut fields = Vec::new();
    lines(bytes, rep, |line, rep, n| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        fields.clear();
        if split_csv(line, &mut fields) {
            f(&fields, rep, n)
        } else {
            rep.skip(format_args!("line {n}"), "unbalanced quotes")
        }
    })
}

/// Splits one CSV record. False when quotes are unbalanced.
pub fn split_csv(line: &str, out: &mut Vec<String>) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut field = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut start = i;
            loop {
                match line[i..].find('"') {
                    None => return false,
                    Some(k) => {
                        field.push_str(&line[start..i + k]);
                        i += k + 1;
                        if i < b.len() && b[i] == b'"' {
                            field.push('"');
                            i += 1;
                            start = i;
                        } else {
                            break;
                        }
                    }
                }
            }
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        } else {
            let end = line[i..].find(',').map(|k| i + k).unwrap_or(b.len());
            field.push_str(line[i..end].trim());
            i = end;
        }
        out.push(field);
        if i >= b.len() {
            return true;
        }
        i += 1; // the comma
    }
}

/// `2023-06-20 10:26:04` (UTC) or an RFC 3339 time, to ms since the epoch.
fn utc_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() == 19 && s.as_bytes()[10] == b' ' {
        let t = format!("{}T{}Z", &s[..10], &s[11..]);
        return stix::parse_timestamp(&t);
    }
    stix::parse_timestamp(s)
}

/// Reads STIX objects: indicators with patterns Watchhouse can match become indicators; other
/// objects are ignored (they are context); revoked and unusable indicators are counted.
pub fn stix_objects(objects: &[Value], out: &mut Vec<Indicator>, rep: &mut Report) {
    // Markings referenced by id: the four TLP 2.0 definitions are known by their fixed ids; a
    // bundle may also carry TLP 1.0 statement/tlp markings.
    let mut tlp_by_id: std::collections::HashMap<&str, Tlp> = stix::TLP2_IDS
        .iter()
        .map(|(t, id)| (*id, *t))
        .chain(stix::TLP1_IDS.iter().map(|(t, id)| (*id, *t)))
        .collect();
    for o in objects {
        if o.get("type").and_then(Value::as_str) == Some("marking-definition") {
            let id = o.get("id").and_then(Value::as_str);
            let tlp = o
                .get("name")
                .and_then(Value::as_str)
                .and_then(Tlp::from_name)
                .or_else(|| {
                    o.pointer("/definition/tlp")
                        .and_then(Value::as_str)
                        .and_then(Tlp::from_name)
                });
            if let (Some(id), Some(t)) = (id, tlp) {
                tlp_by_id.insert(id, t);
            }
        }
    }
    for (k, o) in objects.iter().enumerate() {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        let id = o.get("id").and_then(Value::as_str).unwrap_or("");
        let at = if id.is_empty() {
            format!("object {k}")
        } else {
            crate::clip(id).to_owned()
        };
        if o.get("revoked").and_then(Value::as_bool) == Some(true) {
            rep.skip(&at, "revoked");
            continue;
        }
        if o.get("pattern_type")
            .and_then(Value::as_str)
            .unwrap_or("stix")
            != "stix"
        {
            rep.skip(&at, "pattern type is not `stix`");
            continue;
        }
        let Some(pattern) = o.get("pattern").and_then(Value::as_str) else {
            rep.skip(&at, "no pattern");
            continue;
        };
        let values = match stix::parse_pattern(pattern) {
            Ok(v) => v,
            Err(e) => {
                rep.skip(&at, e);
                continue;
            }
        };
        let tlp = o
            .get("object_marking_refs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().and_then(|r| tlp_by_id.get(r)).copied())
            .max();
        // A label (free-form, Watchhouse puts its category there) says more than the open
        // vocabulary of indicator_types.
        let first = |k: &str| {
            o.get(k)
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(|s| crate::clip(s).to_owned())
        };
        let category = first("labels").or_else(|| first("indicator_types"));
        let confidence = o
            .get("confidence")
            .and_then(Value::as_u64)
            .map(|c| c.min(100) as u8);
        let valid_until_ms = o
            .get("valid_until")
            .and_then(Value::as_str)
            .and_then(stix::parse_timestamp);
        let first_seen_ms = o
            .get("valid_from")
            .and_then(Value::as_str)
            .and_then(stix::parse_timestamp);
        let description = o
            .get("name")
            .or_else(|| o.get("description"))
            .and_then(Value::as_str)
            .map(|s| crate::clip(s).to_owned());
        for value in values {
            out.push(Indicator {
                value,
                category: category.clone(),
                confidence,
                tlp,
                first_seen_ms,
                valid_until_ms,
                description: description.clone(),
                source_id: Some(id.to_owned()).filter(|s| !s.is_empty()),
            });
        }
    }
}

/// A page of a TAXII 2.1 collection's objects (`GET …/objects/`).
#[derive(Debug, Clone, Default)]
pub struct TaxiiPage {
    /// The indicators on the page.
    pub indicators: Vec<Indicator>,
    /// Whether the server has more (`more`).
    pub more: bool,
    /// The `next` token, if given.
    pub next: Option<String>,
    /// Ids of indicators on the page that are revoked: a consumer drops what it holds for them.
    pub revoked: Vec<String>,
}

/// Reads a TAXII 2.1 envelope (`{"more":…, "next":…, "objects":[…]}`).
pub fn parse_taxii_envelope(bytes: &[u8], rep: &mut Report) -> Result<TaxiiPage, FeedError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| FeedError(format!("not a TAXII envelope: {e}")))?;
    if !v.is_object() {
        return Err(FeedError("not a TAXII envelope (not a JSON object)".into()));
    }
    let mut page = TaxiiPage {
        more: v.get("more").and_then(Value::as_bool).unwrap_or(false),
        next: v
            .get("next")
            .and_then(Value::as_str)
            .map(|s| crate::clip(s).to_owned()),
        ..TaxiiPage::default()
    };
    let objects = v
        .get("objects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let before = page.indicators.len();
    stix_objects(objects, &mut page.indicators, rep);
    rep.accepted += page.indicators.len() - before;
    Ok(page)
}

/// One entry of a MISP feed's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MispManifestEntry {
    /// Event UUID: the event is at `<uuid>.json`.
    pub uuid: String,
    /// Event timestamp (seconds); a change means the event changed.
    pub timestamp: i64,
    /// Title.
    pub info: String,
}

/// Reads a MISP feed manifest (`{"<uuid>": {"info":…, "timestamp":…}, …}`). Entries whose key is
/// not a UUID are skipped (the key becomes a file name).
pub fn parse_misp_manifest(
    bytes: &[u8],
    rep: &mut Report,
) -> Result<Vec<MispManifestEntry>, FeedError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| FeedError(format!("not a MISP manifest: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| FeedError("not a MISP manifest (not a JSON object)".into()))?;
    let mut out = Vec::new();
    for (k, e) in obj {
        if uuid::Uuid::parse_str(k).is_err() {
            rep.skip(crate::clip(k), "event key is not a UUID");
            continue;
        }
        let timestamp = match e.get("timestamp") {
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            _ => 0,
        };
        out.push(MispManifestEntry {
            uuid: k.to_ascii_lowercase(),
            timestamp,
            info: e
                .get("info")
                .and_then(Value::as_str)
                .map(|s| crate::clip(s).to_owned())
                .unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    Ok(out)
}

/// Reads one MISP event file (`{"Event": {…, "Attribute": […], "Object": [{"Attribute": […]}],
/// "Tag": [{"name": "tlp:amber"}]}}`). Attributes with `to_ids` false are context, not
/// indicators, and are not counted; attributes of types Watchhouse cannot match are counted.
pub fn parse_misp_event(bytes: &[u8], rep: &mut Report) -> Result<Vec<Indicator>, FeedError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| FeedError(format!("not a MISP event: {e}")))?;
    let ev = v
        .get("Event")
        .ok_or_else(|| FeedError("not a MISP event (no `Event`)".into()))?;
    let tag_tlp = |tags: Option<&Value>| -> Option<Tlp> {
        tags?
            .as_array()?
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .filter(|n| n.to_ascii_lowercase().starts_with("tlp:"))
            .filter_map(Tlp::from_name)
            .max()
    };
    let event_tlp = tag_tlp(ev.get("Tag"));
    let info = ev
        .get("info")
        .and_then(Value::as_str)
        .map(|s| crate::clip(s).to_owned());
    let mut attrs: Vec<&Value> = ev
        .get("Attribute")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for o in ev
        .get("Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        attrs.extend(
            o.get("Attribute")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    }
    let mut out = Vec::new();
    for a in attrs {
        let to_ids = match a.get("to_ids") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        };
        if !to_ids {
            continue;
        }
        let ty = a.get("type").and_then(Value::as_str).unwrap_or("");
        let raw = a.get("value").and_then(Value::as_str).unwrap_or("");
        let at = a
            .get("uuid")
            .and_then(Value::as_str)
            .map(|s| crate::clip(s).to_owned())
            .unwrap_or_else(|| "attribute".into());
        let value = match ty {
            "ip-src" | "ip-dst" => raw.parse::<crate::Cidr>().ok().map(IndicatorValue::Ip),
            "ip-src|port" | "ip-dst|port" => raw
                .split('|')
                .next()
                .and_then(|ip| ip.parse::<crate::Cidr>().ok())
                .map(IndicatorValue::Ip),
            "domain" | "hostname" => {
                crate::indicator::normalise_domain(raw).map(IndicatorValue::Domain)
            }
            "domain|ip" => raw
                .split('|')
                .next()
                .and_then(crate::indicator::normalise_domain)
                .map(IndicatorValue::Domain),
            "url" | "link" => crate::indicator::normalise_url(raw).map(IndicatorValue::Url),
            other => {
                rep.skip(
                    &at,
                    format_args!("attribute type `{}` is not matched", crate::clip(other)),
                );
                continue;
            }
        };
        let Some(value) = value else {
            rep.skip(&at, format_args!("value is not a valid {ty}"));
            continue;
        };
        let mut i = Indicator::new(value);
        i.tlp = tag_tlp(a.get("Tag")).max(event_tlp);
        i.category = a
            .get("category")
            .and_then(Value::as_str)
            .map(|c| c.to_ascii_lowercase().replace(' ', "_"));
        i.description = info.clone();
        i.source_id = a
            .get("uuid")
            .and_then(Value::as_str)
            .map(|s| crate::clip(s).to_owned());
        out.push(i);
    }
    rep.accepted += out.len();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(format: FeedFormat, text: &str) -> (Vec<Indicator>, Report) {
        parse(format, text.as_bytes()).unwrap()
    }

    #[test]
    fn csv_fields() {
        let mut v = Vec::new();
        assert!(split_csv(r#""a", "b,c", "say ""hi""",plain, "#, &mut v));
        assert_eq!(v, vec!["a", "b,c", "say \"hi\"", "plain", ""]);
        v.clear();
        assert!(!split_csv(r#""open"#, &mut v));
    }

    #[test]
    fn spamhaus_json_lines() {
        let (v, rep) = ok(
            FeedFormat::SpamhausJson,
            "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\n{\"cidr\":\"bad\"}\n{\"type\":\"metadata\",\"timestamp\":1687269402,\"records\":1}\nnot json\n",
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].description.as_deref(), Some("SBL256894"));
        assert_eq!(rep.skipped, 2);
    }

    #[test]
    fn feodo_csv() {
        let text = "################\n# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)\n# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\"2021-01-17 07:44:46\",\"51.178.161.32\",\"4643\",\"online\",\"2023-06-20\",\"Dridex\"\n\"2021-01-17 07:44:46\",\"999.1.1.1\",\"4643\",\"online\",\"2023-06-20\",\"Dridex\"\n# Number of entries: 2\n";
        let (v, rep) = ok(FeedFormat::FeodoCsv, text);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].value.to_string(), "51.178.161.32");
        assert_eq!(v[0].category.as_deref(), Some("botnet_c2"));
        assert_eq!(v[0].description.as_deref(), Some("Dridex"));
        assert_eq!(v[0].first_seen_ms, Some(1_610_869_486_000));
        assert_eq!(rep.skipped, 1);
    }

    #[test]
    fn threatfox_csv() {
        let text = "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\"2023-06-20 10:26:04\", \"1126545\", \"45.95.147.229:80\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"BEACON,CobaltStrike\", \"Cobalt Strike\", \"\", \"100\", \"None\", \"CobaltStrike\", \"0\", \"drb_ra\"\n\"2023-06-20 10:20:03\", \"1126544\", \"bad-domain.example\", \"domain\", \"payload_delivery\", \"js.gootloader\", \"\", \"GootLoader\", \"\", \"75\", \"\", \"\", \"0\", \"x\"\n\"2023-06-20 10:20:03\", \"1126543\", \"44d88612fea8a8f36de82e1278abb02f\", \"md5_hash\", \"payload\", \"\", \"\", \"\", \"\", \"50\", \"\", \"\", \"0\", \"x\"\n";
        let (v, rep) = ok(FeedFormat::ThreatfoxCsv, text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].value.to_string(), "45.95.147.229");
        assert_eq!(v[0].confidence, Some(100));
        assert_eq!(v[0].category.as_deref(), Some("botnet_cc"));
        assert_eq!(
            v[1].value,
            IndicatorValue::Domain("bad-domain.example".into())
        );
        assert_eq!(rep.skipped, 1, "hashes are counted, not matched");
    }

    #[test]
    fn urlhaus_csv() {
        let text = "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\"2653541\",\"2023-06-20 10:35:05\",\"http://115.55.236.202:36621/bin.sh\",\"online\",\"2023-06-20 10:35:05\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\"https://urlhaus.abuse.ch/url/2653541/\",\"geenensp\"\n\"1\",\"x\",\"notaurl\",\"offline\",\"\",\"malware_download\",\"\",\"\",\"\"\n";
        let (v, rep) = ok(FeedFormat::UrlhausCsv, text);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].value.to_string(), "http://115.55.236.202:36621/bin.sh");
        assert_eq!(rep.skipped, 1);
    }

    #[test]
    fn tor_exit_addresses() {
        let text = "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\nPublished 2023-06-19 23:49:39\nLastStatus 2023-06-20 10:00:00\nExitAddress 162.247.74.201 2023-06-20 10:03:35\nExitAddress nonsense 2023-06-20\n185.220.101.1\n";
        let (v, rep) = ok(FeedFormat::TorExits, text);
        assert_eq!(v.len(), 2);
        assert_eq!(rep.skipped, 1);
        assert!(v.iter().all(|i| i.category.as_deref() == Some("tor_exit")));
    }

    #[test]
    fn long_lines_and_bad_bytes_cost_one_entry() {
        let mut text = b"1.2.3.4\n".to_vec();
        text.extend(std::iter::repeat_n(b'9', MAX_LINE + 1));
        text.extend(b"\n\xff\xfe\n5.6.7.8\n");
        let (v, rep) = parse(FeedFormat::Netset, &text).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(rep.skipped, 2);
    }

    #[test]
    fn stix_bundle_with_markings() {
        let bundle = serde_json::json!({
            "type": "bundle", "id": "bundle--6b2a3c8e-0f4e-4b61-9b0a-2f0f0e4f9a11",
            "objects": [
                {"type": "indicator", "spec_version": "2.1", "id": "indicator--a1a0a1a0-0000-4000-8000-000000000001",
                 "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
                 "pattern": "[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'c2.example']",
                 "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00.000Z",
                 "confidence": 85, "indicator_types": ["malicious-activity"],
                 "object_marking_refs": ["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"]},
                {"type": "indicator", "spec_version": "2.1", "id": "indicator--a1a0a1a0-0000-4000-8000-000000000002",
                 "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
                 "pattern": "[file:hashes.'SHA-256' = 'aa']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"},
                {"type": "indicator", "id": "indicator--3", "pattern": "[ipv4-addr:value = '1.1.1.1']", "revoked": true},
                {"type": "indicator", "id": "indicator--4", "pattern": "rule x {}", "pattern_type": "yara"},
                {"type": "identity", "id": "identity--1", "name": "x"}
            ]
        });
        let (v, rep) = parse(FeedFormat::Stix, bundle.to_string().as_bytes()).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].tlp, Some(Tlp::Red));
        assert_eq!(v[0].confidence, Some(85));
        assert_eq!(v[0].valid_until_ms, Some(1_798_761_600_000));
        assert_eq!(v[1].value, IndicatorValue::Domain("c2.example".into()));
        assert_eq!(rep.skipped, 3);
        assert!(parse(FeedFormat::Stix, b"{\"type\":\"report\"}").is_err());
        assert!(parse(FeedFormat::Stix, b"[").is_err());
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(parse(FeedFormat::Stix, deep.as_bytes()).is_err());
        let mut rep = Report::default();
        assert!(parse_misp_event(deep.as_bytes(), &mut rep).is_err());
        assert!(parse_taxii_envelope(deep.as_bytes(), &mut rep).is_err());
    }

    #[test]
    fn misp_manifest_and_event() {
        let manifest = br#"{"5f0b0a4e-0000-4000-8000-000000000001": {"info": "Emotet C2", "timestamp": "1687269402", "Tag": []}, "../../etc/passwd": {"timestamp": 1}}"#;
        let mut rep = Report::default();
        let m = parse_misp_manifest(manifest, &mut rep).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].timestamp, 1_687_269_402);
        assert_eq!(rep.skipped, 1);
        let event = br#"{"Event": {"info": "Emotet C2", "Tag": [{"name": "tlp:green"}],
            "Attribute": [
              {"type": "ip-dst", "value": "203.0.113.50", "to_ids": true, "category": "Network activity", "uuid": "a1"},
              {"type": "ip-dst|port", "value": "203.0.113.51|8080", "to_ids": "1", "uuid": "a2", "Tag": [{"name": "tlp:amber"}]},
              {"type": "comment", "value": "context", "to_ids": false},
              {"type": "sha256", "value": "ab", "to_ids": true, "uuid": "a3"},
              {"type": "ip-dst", "value": "nope", "to_ids": true, "uuid": "a4"}
            ],
            "Object": [{"Attribute": [{"type": "url", "value": "http://bad.example/x", "to_ids": true, "uuid": "a5"}]}]}}"#;
        let mut rep = Report::default();
        let v = parse_misp_event(event, &mut rep).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].tlp, Some(Tlp::Green));
        assert_eq!(v[1].tlp, Some(Tlp::Amber));
        assert_eq!(v[0].category.as_deref(), Some("network_activity"));
        assert_eq!(rep.skipped, 2);
    }

    #[test]
    fn taxii_envelope() {
        let env = serde_json::json!({"more": true, "next": "abc", "objects": [
            {"type": "indicator", "id": "indicator--1", "pattern": "[ipv6-addr:value = '2001:db8::/32']", "pattern_type": "stix"}
        ]});
        let mut rep = Report::default();
        let p = parse_taxii_envelope(env.to_string().as_bytes(), &mut rep).unwrap();
        assert!(p.more);
        assert_eq!(p.next.as_deref(), Some("abc"));
        assert_eq!(p.indicators[0].value.to_string(), "2001:db8::/32");
        assert_eq!(rep.accepted, 1);
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(b"# x\n1.2.3.4\n"), FeedFormat::Netset);
        assert_eq!(
            sniff(b"{\"cidr\":\"1.2.3.0/24\"}\n"),
            FeedFormat::SpamhausJson
        );
        assert_eq!(sniff(b"{\"type\":\"bundle\"}"), FeedFormat::Stix);
        assert_eq!(
            sniff(b"# \"first_seen_utc\",\"dst_ip\"\n"),
            FeedFormat::FeodoCsv
        );
        assert_eq!(
            sniff(b"# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link\n"),
            FeedFormat::UrlhausCsv
        );
        assert_eq!(
            sniff(b"ExitNode A\nExitAddress 1.2.3.4 x\n"),
            FeedFormat::TorExits
        );
        assert_eq!(sniff(b"# bad\nevil.example\n"), FeedFormat::Domains);
    }

    #[test]
    fn finds_addresses_in_log_lines() {
        let got: Vec<String> = ipv4_tokens(
            b"SRC=203.0.113.5 DST=10.0.0.1 v1.2.3.4.5 999.1.1.1 1.2.3 ts=12.34.56.78:443,8.8.8.8",
        )
        .map(|a| a.to_string())
        .collect();
        assert_eq!(
            got,
            vec!["203.0.113.5", "10.0.0.1", "12.34.56.78", "8.8.8.8"]
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn finds_every_written_address(a in any::<[u8; 4]>(), pre in "[a-z =]{0,5}", post in "[a-z :]{0,5}") {
                let ip = std::net::Ipv4Addr::from(a);
                let line = format!("{pre}{ip}{post}");
                prop_assert_eq!(ipv4_tokens(line.as_bytes()).collect::<Vec<_>>(), vec![ip]);
            }

            #[test]
            fn no_reader_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                for f in FeedFormat::ALL {
                    if let Ok((v, rep)) = parse(*f, &bytes) {
                        prop_assert_eq!(v.len(), rep.accepted);
                    }
                }
                let mut rep = Report::default();
                let _ = parse_misp_event(&bytes, &mut rep);
                let _ = parse_misp_manifest(&bytes, &mut rep);
                let _ = parse_taxii_envelope(&bytes, &mut rep);
            }
        }
    }
}
