//! `watchhouse parse`: log lines in, OCSF Network Activity JSON out, reasons for the rest.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use watchhouse_event::Format;
use watchhouse_parse::{parse_line, TimeContext};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// Parser to use: auto (detect per line) or one format for every line: netfilter
    /// (iptables, UFW, nftables, Proxmox, UniFi), filterlog (pfSense, OPNsense), cisco_asa,
    /// fortigate, meraki, panos, sonicwall, sophos, watchguard, mikrotik, juniper_srx,
    /// checkpoint, draytek, barracuda, untangle, cef, leef, zeek or suricata.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Zone of timestamps that carry none (RFC 3164): UTC or an IANA name.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// Print no events: only how many lines each parser took, how many were refused and why,
    /// and the rate.
    #[arg(long)]
    summary: bool,
    /// File to read; standard input when absent or `-`.
    file: Option<PathBuf>,
}

/// Runs the command. Parsed lines go to stdout, one JSON object each; unparsed lines go to
/// stderr as `line N: format: reason: text`; a summary ends stderr.
pub fn run(args: ParseArgs) -> Result<()> {
    let format = if args.format.eq_ignore_ascii_case("auto") {
        None
    } else {
        Some(Format::from_name(&args.format).with_context(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            format!(
                "unknown format `{}`: use auto or one of {}",
                args.format,
                names.join(", ")
            )
        })?)
    };
    let tz = if args.timezone.eq_ignore_ascii_case("utc") {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::get(&args.timezone)
            .with_context(|| format!("unknown time zone `{}`", args.timezone))?
    };
    let input: Box<dyn Read> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ),
    };
    let now = jiff::Timestamp::now().as_millisecond();
    let ctx = TimeContext::new(now, tz);
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    let mut err = BufWriter::new(stderr.lock());
    let (mut ok, mut bad) = (0u64, 0u64);
    // Counted by the format's position in `Format::ALL`: no map lookup per line.
    let mut by_format = vec![0u64; Format::ALL.len()];
    let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
    let started = std::time::Instant::now();
    let mut line = Vec::new();
    let mut n = 0u64;
    let max = watchhouse_parse::framing::DEFAULT_MAX_FRAME;
    loop {
        // A line whole in the read buffer is parsed where it lies; one that straddles the
        // buffer's end is copied out first.
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (text, used) = match memchr::memchr(b'\n', buf) {
            Some(p) if p <= max => (&buf[..p], p + 1),
            _ => {
                line.clear();
                // Cap memory on hostile input: a line over 64 KiB is reported and skipped.
                (&mut reader)
                    .take(max as u64 + 1)
                    .read_until(b'\n', &mut line)?;
                if !line.ends_with(b"\n") && line.len() > max {
                    skip_rest_of_line(&mut reader)?;
                    n += 1;
                    bad += 1;
                    writeln!(err, "line {n}: oversize: longer than 64 KiB")?;
                    continue;
                }
                (&line[..], 0)
            }
        };
        n += 1;
        let text = trim(text);
        if !text.is_empty() {
            match parse_line(text, &ctx, format) {
                Ok(e) if args.summary => {
                    ok += 1;
                    by_format[format_index(e.format)] += 1;
                }
                Ok(e) => {
                    ok += 1;
                    e.write_ocsf(&mut out)?;
                    out.write_all(b"\n")?;
                }
                Err(u) if args.summary => {
                    bad += 1;
                    *by_reason.entry(u.to_string()).or_default() += 1;
                }
                Err(u) => {
                    bad += 1;
                    let shown = String::from_utf8_lossy(&text[..text.len().min(300)]);
                    writeln!(err, "line {n}: {u}: {shown}")?;
                }
            }
        }
        if used > 0 {
            reader.consume(used);
        }
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    if args.summary {
        let mut named: Vec<(&str, u64)> = Format::ALL
            .iter()
            .zip(&by_format)
            .filter(|(_, c)| **c > 0)
            .map(|(f, c)| (f.as_str(), *c))
            .collect();
        named.sort_unstable();
        for (f, c) in named {
            writeln!(err, "  {f}: {c}")?;
        }
        for (r, c) in &by_reason {
            writeln!(err, "  not parsed ({r}): {c}")?;
        }
        writeln!(
            err,
            "{:.0} lines/s ({} lines in {secs:.3} s)",
            (ok + bad) as f64 / secs.max(1e-9),
            ok + bad
        )?;
    }
    writeln!(err, "parsed {ok} lines, could not parse {bad}")?;
    err.flush()?;
    Ok(())
}

/// Position of `f` in [`Format::ALL`].
fn format_index(f: Format) -> usize {
    Format::ALL.iter().position(|x| *x == f).unwrap_or(0)
}

/// Discards input up to and including the next line end.
fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match memchr::memchr(b'\n', buf) {
            Some(p) => {
                reader.consume(p + 1);
                return Ok(());
            }
            None => {
                let l = buf.len();
                reader.consume(l);
            }
        }
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}
