//! `watchhouse parse`: log lines in, OCSF Network Activity JSON out, reasons for the rest.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use watchhouse_event::Format;
use watchhouse_parse::{parse_line_ref, parse_str_ref, TimeContext};

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
    let mut lines = Lines::new(input, watchhouse_parse::framing::DEFAULT_MAX_FRAME);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    let mut err = BufWriter::new(stderr.lock());
    let (mut ok, mut bad) = (0u64, 0u64);
    // Counted by the format's position in `Format::ALL`: no map lookup per line.
    let mut by_format = vec![0u64; Format::ALL.len()];
    let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
    let started = std::time::Instant::now();
    let mut n = 0u64;
    lines.for_each(|line| {
        n += 1;
        // A line of a region that was valid UTF-8 as a whole needs no check of its own.
        let (text, parsed) = match line {
            Line::Oversize => {
                bad += 1;
                writeln!(err, "line {n}: oversize: longer than 64 KiB")?;
                return Ok(());
            }
            Line::Text(t) => {
                let b = trim(t.as_bytes());
                // Only ASCII bytes were cut: `b.len()` is a character boundary.
                let t = &t[..b.len()];
                if t.is_empty() {
                    return Ok(());
                }
                (t.as_bytes(), parse_str_ref(t, &ctx, format))
            }
            Line::Bytes(b) => {
                let b = trim(b);
                if b.is_empty() {
                    return Ok(());
                }
                (b, parse_line_ref(b, &ctx, format))
            }
        };
        match parsed {
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
        Ok(())
    })?;
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

/// One line of input, without its `\n`.
enum Line<'a> {
    /// From a region that was valid UTF-8 as a whole.
    Text(&'a str),
    /// From a region with invalid UTF-8 somewhere: the parser checks this line itself.
    Bytes(&'a [u8]),
    /// Longer than the limit: skipped without being held in memory.
    Oversize,
}

/// Lines read a large chunk at a time and handed to a closure. Each chunk, up to its last
/// newline, is a region: its UTF-8 check runs once for all of it (SIMD) and one newline search
/// walks it, so no line pays a call of its own for either (those calls were about 2% of the
/// instructions on 150–560-byte firewall lines). A valid region's lines are `&str` slices of the checked
/// region, without a copy, a second check or `unsafe`.
struct Lines<R> {
    input: R,
    /// Read but not yet handed out: the unterminated end of the last region, then new input.
    buf: Vec<u8>,
    max: usize,
    eof: bool,
}

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

impl<R: Read> Lines<R> {
    fn new(input: R, max: usize) -> Self {
        Lines {
            input,
            buf: Vec::with_capacity(CHUNK + max + 1),
            max,
            eof: false,
        }
    }

    /// Appends up to a chunk of input to `buf` (into its spare room, not zeroed first); at the
    /// end of input sets `eof`.
    fn read_more(&mut self) -> std::io::Result<()> {
        if (&mut self.input)
            .take(CHUNK as u64)
            .read_to_end(&mut self.buf)?
            == 0
        {
            self.eof = true;
        }
        Ok(())
    }

    /// Calls `f` with every line, in order, then returns; stops at `f`'s first error.
    fn for_each(
        &mut self,
        mut f: impl FnMut(Line<'_>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        loop {
            if let Some(last) = memchr::memrchr(b'\n', &self.buf) {
                let region = &self.buf[..last + 1];
                let max = self.max;
                let mut start = 0;
                match simdutf8::basic::from_utf8(region) {
                    Ok(text) => {
                        for nl in memchr::memchr_iter(b'\n', region) {
                            if nl - start > max {
                                f(Line::Oversize)?;
                            } else {
                                // A newline never falls inside a character: both ends are
                                // boundaries.
                                f(Line::Text(&text[start..nl]))?;
                            }
                            start = nl + 1;
                        }
                    }
                    Err(_) => {
                        for nl in memchr::memchr_iter(b'\n', region) {
                            if nl - start > max {
                                f(Line::Oversize)?;
                            } else {
                                f(Line::Bytes(&region[start..nl]))?;
                            }
                            start = nl + 1;
                        }
                    }
                }
                self.buf.drain(..last + 1);
                continue;
            }
            // No newline among the bytes read.
            if self.buf.len() > self.max {
                // A line longer than the limit: reported once, its bytes dropped as they come.
                self.buf.clear();
                while !self.eof {
                    self.read_more()?;
                    if let Some(p) = memchr::memchr(b'\n', &self.buf) {
                        self.buf.drain(..p + 1);
                        break;
                    }
                    self.buf.clear();
                }
                f(Line::Oversize)?;
                continue;
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(());
                }
                // The last line, without its newline: given one.
                self.buf.push(b'\n');
                continue;
            }
            self.read_more()?;
        }
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}
