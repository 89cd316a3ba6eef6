//! `watchhouse collect --diagnose`: listen like the collector would, but ship nothing, and show
//! what is arriving, which parser took it, what the privacy filter would keep back, and samples
//! of what could not be read. Needs no enrolment.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use watchhouse_parse::{parse_line, TimeContext};

use crate::edge::{EdgePolicy, Verdict};
use crate::sources::{self, FilePos, Input};
use crate::{parse_format, CollectorConfig, CollectorError};

/// What has been seen so far.
#[derive(Debug, Default, Clone)]
pub struct Diagnosis {
    /// Where it listens and what it follows.
    pub listening: Vec<String>,
    /// Lines received.
    pub received: u64,
    /// Lines parsed, per format.
    pub parsed: BTreeMap<&'static str, u64>,
    /// Lines not parsed, per `format: reason`.
    pub unparsed: BTreeMap<String, u64>,
    /// Parsed lines the privacy filter would keep on the network, per reason.
    pub withheld: BTreeMap<&'static str, u64>,
    /// The latest line each format took, with what it read.
    pub examples: BTreeMap<&'static str, (String, String)>,
    /// The latest lines that could not be read, with why.
    pub samples: VecDeque<(String, String)>,
}

impl Diagnosis {
    /// A plain-text report.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "Listening on: {}", self.listening.join(", "));
        let parsed: u64 = self.parsed.values().sum();
        let unparsed: u64 = self.unparsed.values().sum();
        let _ = writeln!(
            s,
            "Lines received: {}  understood: {parsed}  not understood: {unparsed}",
            self.received
        );
        if !self.parsed.is_empty() {
            let _ = writeln!(s, "\nUnderstood, by parser:");
            for (f, n) in &self.parsed {
                let _ = writeln!(s, "  {f:<12} {n:>10}");
            }
        }
        if !self.withheld.is_empty() {
            let _ = writeln!(s, "\nWould stay on your network (privacy filter):");
            for (r, n) in &self.withheld {
                let _ = writeln!(s, "  {r:<18} {n:>10}");
            }
        }
        if !self.unparsed.is_empty() {
            let _ = writeln!(s, "\nNot understood, by reason:");
            for (r, n) in &self.unparsed {
                let _ = writeln!(s, "  {r:<30} {n:>10}");
            }
        }
        if !self.examples.is_empty() {
            let _ = writeln!(s, "\nLatest line per parser:");
            for (f, (line, read)) in &self.examples {
                let _ = writeln!(s, "  [{f}] {}\n      -> {read}", clip(line, 160));
            }
        }
        if !self.samples.is_empty() {
            let _ = writeln!(s, "\nLatest lines not understood:");
            for (why, line) in &self.samples {
                let _ = writeln!(s, "  [{why}] {}", clip(line, 160));
            }
        }
        s
    }
}

fn clip(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Listens until `stop` completes, calling `report` every `every` and once at the end.
pub async fn run(
    cfg: CollectorConfig,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
    mut report: impl FnMut(&Diagnosis),
) -> Result<Diagnosis, CollectorError> {
    let syslog_format = parse_format(&cfg.format)?;
    let tz = if cfg.timezone.eq_ignore_ascii_case("utc") {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::get(&cfg.timezone)
            .map_err(|e| CollectorError::Config(format!("timezone `{}`: {e}", cfg.timezone)))?
    };
    // The member's settings, if this collector was enrolled before.
    let settings: watchhouse_proto::CollectorSettings =
        std::fs::read(cfg.data_dir.join("settings.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
    let (policy, _) = EdgePolicy::new(&settings.member_networks, settings.send_outbound);
    let (tx, mut rx) = mpsc::channel::<Input>(65_536);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut d = Diagnosis::default();
    let mut formats = vec![syslog_format];
    for a in &cfg.udp_listen {
        let sock = UdpSocket::bind(a)
            .await
            .map_err(|e| CollectorError::Config(format!("cannot listen on udp {a}: {e}")))?;
        d.listening.push(format!(
            "udp {}",
            sock.local_addr()
                .map_err(|e| CollectorError::Io(e.to_string()))?
        ));
        tokio::spawn(sources::udp(sock, 0, tx.clone(), stop_rx.clone()));
    }
    for a in &cfg.tcp_listen {
        let l = TcpListener::bind(a)
            .await
            .map_err(|e| CollectorError::Config(format!("cannot listen on tcp {a}: {e}")))?;
        d.listening.push(format!(
            "tcp {}",
            l.local_addr()
                .map_err(|e| CollectorError::Io(e.to_string()))?
        ));
        tokio::spawn(sources::tcp(l, 0, tx.clone(), stop_rx.clone()));
    }
    let (inode_tx, _inode_rx) = mpsc::unbounded_channel();
    for (i, f) in cfg.files.iter().enumerate() {
        formats.push(parse_format(&f.format)?);
        // Follow from the current end: this shows what is arriving now.
        let start = std::fs::metadata(&f.path).ok().map(|m| FilePos {
            inode: sources::inode(&m),
            offset: m.len(),
        });
        d.listening.push(format!("file {}", f.path.display()));
        tokio::spawn(sources::tail(
            f.path.clone(),
            formats.len() - 1,
            i,
            start,
            tx.clone(),
            stop_rx.clone(),
            Duration::from_millis(250),
            inode_tx.clone(),
        ));
    }
    drop(tx);
    let formats = Arc::new(formats);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(input) = msg else { break };
                d.received += 1;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|x| x.as_millis() as i64).unwrap_or(0);
                let ctx = TimeContext::new(now, tz.clone());
                match input {
                    Input::Bad { reason, sample, .. } => {
                        *d.unparsed.entry(format!("unknown: {}", reason.code())).or_default() += 1;
                        push_sample(&mut d, reason.code().to_owned(), &sample);
                    }
                    Input::Line { source, bytes, .. } => {
                        let forced = formats.get(source).copied().flatten();
                        match parse_line(&bytes, &ctx, forced) {
                            Ok(e) => {
                                *d.parsed.entry(e.format.as_str()).or_default() += 1;
                                let read = format!(
                                    "{} {} {}:{} -> {}:{}",
                                    e.action.as_str(),
                                    e.protocol,
                                    e.src_ip,
                                    e.src_port.map(|p| p.to_string()).unwrap_or_default(),
                                    e.dst_ip,
                                    e.dst_port.map(|p| p.to_string()).unwrap_or_default()
                                );
                                if let Verdict::Withhold(r) = policy.classify(&e) {
                                    *d.withheld.entry(r).or_default() += 1;
                                }
                                d.examples.insert(e.format.as_str(), (String::from_utf8_lossy(&bytes).into_owned(), read));
                            }
                            Err(u) => {
                                *d.unparsed.entry(u.to_string()).or_default() += 1;
                                push_sample(&mut d, u.to_string(), &bytes);
                            }
                        }
                    }
                }
            }
            _ = tick.tick() => report(&d),
            _ = &mut stop => break,
        }
    }
    let _ = stop_tx.send(true);
    report(&d);
    Ok(d)
}

fn push_sample(d: &mut Diagnosis, why: String, line: &[u8]) {
    if d.samples.len() == 10 {
        d.samples.pop_front();
    }
    d.samples.push_back((
        why,
        String::from_utf8_lossy(&line[..line.len().min(512)]).into_owned(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn diagnosis_counts_parsers_reasons_and_privacy() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CollectorConfig {
            data_dir: dir.path().to_owned(),
            udp_listen: vec!["127.0.0.1:0".into()],
            tcp_listen: vec![],
            ..Default::default()
        };
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<std::net::SocketAddr>();
        let sender = tokio::spawn(async move {
            let addr = addr_rx.await.unwrap();
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for l in [
                "<4>Nov 21 06:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=198.51.100.10 PROTO=TCP SPT=1 DPT=22",
                "<4>Nov 21 06:00:00 fw kernel: [UFW ALLOW] IN=eth1 OUT=eth0 SRC=192.168.1.5 DST=192.168.1.9 PROTO=TCP SPT=1 DPT=445",
                "hello there",
            ] {
                s.send_to(l.as_bytes(), addr).await.unwrap();
            }
        });
        let mut addr_tx = Some(addr_tx);
        let d = run(
            cfg,
            Duration::from_millis(50),
            tokio::time::sleep(Duration::from_millis(800)),
            |d| {
                if let Some(tx) = addr_tx.take() {
                    let a: std::net::SocketAddr =
                        d.listening[0].trim_start_matches("udp ").parse().unwrap();
                    let _ = tx.send(a);
                }
            },
        )
        .await
        .unwrap();
        sender.await.unwrap();
        assert_eq!(d.received, 3);
        assert_eq!(d.parsed.get("netfilter"), Some(&2));
        assert_eq!(d.withheld.get("internal"), Some(&1));
        assert_eq!(d.unparsed.get("unknown_format"), Some(&1));
        let text = d.render();
        assert!(
            text.contains("netfilter") && text.contains("hello there"),
            "{text}"
        );
    }
}
