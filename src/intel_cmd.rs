//! `watchhouse intel`: answer "is this address listed, and by whom?" from the command line, with
//! the same readers and matcher the hub uses.

use std::io::{BufRead, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use watchhouse_intel::formats::{self, FeedFormat};
use watchhouse_intel::{FeedInfo, IndicatorValue, Match, Matcher, MatcherBuilder};

/// Arguments of `watchhouse intel`.
#[derive(Debug, clap::Args)]
pub struct IntelArgs {
    #[command(subcommand)]
    command: IntelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IntelCommand {
    /// Look addresses, domains or URLs up in feed files. Exit status 0 when something is
    /// listed, 1 when nothing is, 2 on errors (like grep).
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// A feed file (repeatable): plain IP/CIDR list, Spamhaus DROP JSON, abuse.ch CSV, Tor exit
    /// list, domain list or STIX 2.1 bundle; `.gz` is decompressed. The format is guessed from
    /// the content unless given as FORMAT:PATH (e.g. feodo_csv:ipblocklist.csv).
    #[arg(long = "feed", value_name = "[FORMAT:]PATH", required = true)]
    feeds: Vec<String>,
    /// Print matching input lines instead of answering per value, like grepcidr: every IPv4
    /// address written in a line is looked up. Reads stdin.
    #[arg(long)]
    filter: bool,
    /// One JSON object per answer.
    #[arg(long)]
    json: bool,
    /// Values to look up; read from stdin, one per line, when none are given.
    values: Vec<String>,
}

/// Runs `watchhouse intel …`.
/// `Ok(true)` when something was listed.
pub fn run(args: IntelArgs) -> Result<bool> {
    match args.command {
        IntelCommand::Check(a) => check(a),
    }
}

fn load(spec: &str) -> Result<(String, Option<String>, Vec<watchhouse_intel::Indicator>)> {
    let (format, path) = match spec.split_once(':') {
        Some((f, p)) if FeedFormat::from_name(f).is_some() => (FeedFormat::from_name(f), p),
        _ => (None, spec),
    };
    let path = PathBuf::from(path);
    let mut bytes = Vec::new();
    let file = std::fs::File::open(&path)
        .with_context(|| format!("cannot open feed {}", path.display()))?;
    // Bounded like the hub: a hostile or broken file cannot exhaust memory.
    let limit = watchhouse_hub::intel::MAX_FEED_BYTES;
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
    } else {
        file.take(limit + 1).read_to_end(&mut bytes)
    }
    .with_context(|| format!("cannot read feed {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("feed {} is larger than {limit} bytes", path.display());
    }
    let format = format.unwrap_or_else(|| formats::sniff(&bytes));
    let (v, rep) = formats::parse(format, &bytes).with_context(|| {
        format!(
            "cannot read feed {} as {format}; name the format as FORMAT:PATH (one of: {})",
            path.display(),
            FeedFormat::ALL
                .iter()
                .filter(|f| !matches!(f, FeedFormat::Taxii | FeedFormat::Misp))
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if rep.skipped > 0 {
        eprintln!(
            "{}: skipped {} malformed or unsupported entries, e.g. {}",
            path.display(),
            rep.skipped,
            rep.samples.first().map(String::as_str).unwrap_or("")
        );
    }
    // The file name without `.gz` and without its extension names the feed.
    let name = path
        .file_name()
        .map(|n| {
            let n = n.to_string_lossy();
            let n = n.trim_end_matches(".gz");
            n.rsplit_once('.').map(|(a, _)| a).unwrap_or(n).to_owned()
        })
        .unwrap_or_else(|| spec.to_owned());
    let category = (format == FeedFormat::Netset)
        .then(|| {
            formats::firehol_header(&String::from_utf8_lossy(&bytes[..bytes.len().min(16384)]))
                .category
        })
        .flatten();
    Ok((name, category, v))
}

fn describe(m: &Matcher, hit: &Match<'_>) -> Vec<serde_json::Value> {
    hit.labels()
        .iter()
        .map(|l| {
            serde_json::json!({
                "feed": m.feed(l.feed).name,
                "category": m.category(*l),
                "confidence": l.confidence,
                "tlp": l.tlp.label(),
            })
        })
        .collect()
}

fn check(a: CheckArgs) -> Result<bool> {
    let mut b = MatcherBuilder::new();
    for spec in &a.feeds {
        let (name, header_cat, v) = load(spec)?;
        let f = b
            .add_feed(FeedInfo::new(
                name,
                header_cat.unwrap_or_else(|| "listed".into()),
            ))
            .context("too many feeds")?;
        for i in &v {
            b.add(f, i);
        }
    }
    let m = b.build();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut any = false;
    if a.filter {
        let stdin = std::io::stdin();
        let mut input = std::io::BufReader::with_capacity(1 << 16, stdin.lock());
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if formats::ipv4_tokens(&line).any(|ip| m.contains(IpAddr::V4(ip))) {
                any = true;
                out.write_all(&line)?;
            }
        }
    } else {
        let mut answer = |v: &str, out: &mut dyn Write| -> Result<()> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(());
            }
            let parsed = IndicatorValue::parse(v);
            let hit = parsed.as_ref().ok().and_then(|p| m.lookup_value(p));
            any |= hit.is_some();
            if a.json {
                let j = match (&parsed, &hit) {
                    (Err(e), _) => serde_json::json!({"value": v, "error": e}),
                    (Ok(_), Some(h)) => {
                        serde_json::json!({"value": v, "listed": true, "labels": describe(&m, h)})
                    }
                    (Ok(_), None) => serde_json::json!({"value": v, "listed": false}),
                };
                writeln!(out, "{j}")?;
            } else {
                match (&parsed, &hit) {
                    (Err(e), _) => writeln!(out, "{v}\terror: {e}")?,
                    (Ok(_), None) => writeln!(out, "{v}\tnot listed")?,
                    (Ok(_), Some(h)) => {
                        let labels: Vec<String> = h
                            .labels()
                            .iter()
                            .map(|l| {
                                format!(
                                    "{} ({}, confidence {}, {})",
                                    m.feed(l.feed).name,
                                    m.category(*l),
                                    l.confidence,
                                    l.tlp
                                )
                            })
                            .collect();
                        writeln!(out, "{v}\tlisted: {}", labels.join("; "))?
                    }
                }
            }
            Ok(())
        };
        if a.values.is_empty() {
            for line in std::io::stdin().lock().lines() {
                answer(&line?, &mut out)?;
            }
        } else {
            for v in &a.values {
                answer(v, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(any)
}
