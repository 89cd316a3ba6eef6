//! The collector agent: it sits on the member's network, reads the firewall's logs, keeps
//! private traffic private, and ships the rest to the hub without losing or duplicating any.
//!
//! ```text
//! UDP ─┐
//! TCP ─┼─▶ channel ─▶ parse (pure) ─▶ edge filter (pure) ─▶ batch ─▶ spool (fsync) ─▶ shipper ─▶ hub
//! file ┘                                    │ withheld: counted          ▲ settings pushed back ┘
//! ```
//!
//! **Invariants.** A line is counted exactly once: parsed, unparsed (with reason, sampled) or
//! withheld. A batch is on disk before anything is acknowledged, keeps its id on every retry,
//! and leaves the spool only when the hub has acknowledged it (stored or duplicate).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;
use watchhouse_event::{Event, Format};
use watchhouse_parse::{parse_line, Reason, TimeContext};
use watchhouse_proto::{
    Batch, CollectorSettings, CollectorStats, EnrolRequest, EnrolResponse, IngestResponse,
    UnparsedSample, IDEMPOTENCY_HEADER, MAX_SAMPLE_BYTES, WIRE_VERSION,
};

pub mod aggregate;
pub mod diagnose;
pub mod edge;
pub mod sources;
pub mod spool;

use aggregate::Aggregator;
use edge::{EdgePolicy, Verdict};
use sources::{FilePos, Input};
use spool::Spool;

/// The collector's version, reported to the hub.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A file to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// Path of the log file.
    pub path: PathBuf,
    /// Parser to use (`auto` to detect per line).
    #[serde(default = "auto")]
    pub format: String,
}

fn auto() -> String {
    "auto".into()
}

/// `[collector]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// The hub's base URL.
    pub hub_url: String,
    /// Directory for the credential, settings, checkpoints and spool.
    pub data_dir: PathBuf,
    /// This collector's name, shown in the hub.
    pub name: String,
    /// One-time enrolment token (used once; afterwards the stored credential is used).
    pub enrolment_token: String,
    /// Syslog UDP listen addresses.
    pub udp_listen: Vec<String>,
    /// Bytes of kernel receive buffer to ask for on UDP listeners (bursts wait there).
    pub udp_receive_buffer: usize,
    /// Syslog TCP listen addresses (RFC 6587, both framings).
    pub tcp_listen: Vec<String>,
    /// Syslog-over-TLS listen addresses (RFC 5425; conventionally port 6514).
    pub tls_listen: Vec<String>,
    /// PEM certificate chain the TLS listener presents.
    pub tls_cert: String,
    /// PEM private key for it.
    pub tls_key: String,
    /// PEM CA certificate(s): when set, senders must present a client certificate signed by it.
    pub tls_client_ca: String,
    /// Parser for syslog sources (`auto` detects per line).
    pub format: String,
    /// Files to follow.
    pub files: Vec<FileSource>,
    /// Zone of timestamps that carry none (RFC 3164): `UTC` or an IANA name such as `Europe/London`.
    pub timezone: String,
    /// Seal a batch when it holds this many events.
    pub batch_max_events: usize,
    /// Seal a batch at least this often, in milliseconds (the hub may push another value).
    pub upload_interval_ms: u64,
    /// Most bytes the spool may hold before the oldest batches are dropped.
    pub spool_max_bytes: u64,
    /// Repeats of a flow (same source, destination, port, protocol, action) within this many
    /// seconds are sent as one summary record; the first occurrence is always sent at once.
    /// 0 turns aggregation off.
    pub aggregate_window_secs: u64,
    /// Most distinct flows held for aggregation; beyond it events pass through unaggregated.
    pub aggregate_max_flows: usize,
    /// Extra PEM CA certificate to trust for an `https://` hub.
    pub ca_cert: String,
    /// Seconds without shipping after which the collector sends a heartbeat.
    pub heartbeat_secs: u64,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            hub_url: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./watchhouse-collector"),
            name: "collector".into(),
            enrolment_token: String::new(),
            udp_listen: vec!["127.0.0.1:5514".into()],
            udp_receive_buffer: 32 * 1024 * 1024,
            tcp_listen: vec!["127.0.0.1:5514".into()],
            tls_listen: Vec::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_client_ca: String::new(),
            format: "auto".into(),
            files: Vec::new(),
            timezone: "UTC".into(),
            batch_max_events: 5_000,
            upload_interval_ms: 2_000,
            spool_max_bytes: 512 * 1024 * 1024,
            aggregate_window_secs: 60,
            aggregate_max_flows: 100_000,
            ca_cert: String::new(),
            heartbeat_secs: 60,
        }
    }
}

/// Errors starting the collector.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// Configuration problem; the message says what to change.
    #[error("{0}")]
    Config(String),
    /// Enrolment failed.
    #[error("enrolment failed: {0}")]
    Enrol(String),
    /// IO.
    #[error("{0}")]
    Io(String),
}

/// The credential saved after enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    collector_id: String,
    member_id: String,
    credential: String,
    hub_url: String,
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(
            f,
            "collector {} for member {}",
            self.collector_id, self.member_id
        )
    }
}

pub(crate) fn parse_format(s: &str) -> Result<Option<Format>, CollectorError> {
    if s.eq_ignore_ascii_case("auto") || s.is_empty() {
        return Ok(None);
    }
    Format::from_name(s).map(Some).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        CollectorError::Config(format!(
            "unknown format `{s}`: use auto or one of {}",
            names.join(", ")
        ))
    })
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A UDP socket with a large receive buffer: a burst from the firewall waits in the kernel
/// instead of being dropped while the parser catches up.
fn bind_udp(addr: &str, want: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr: SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if want > 0 {
        let _ = s.set_recv_buffer_size(want);
        let got = s.recv_buffer_size().unwrap_or(0);
        if got < want / 2 {
            tracing::warn!(
                wanted = want,
                got,
                "the kernel capped the UDP receive buffer; bursts may be dropped. Raise it with \
                 `sysctl -w net.core.rmem_max={want}` (and make it permanent in /etc/sysctl.d)"
            );
        }
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// The TLS server configuration for syslog over TLS, requiring client certificates when a
/// client CA is configured.
fn tls_acceptor(cfg: &CollectorConfig) -> Result<tokio_rustls::TlsAcceptor, CollectorError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad =
        |what: &str, e: &dyn std::fmt::Display| CollectorError::Config(format!("{what}: {e}"));
    if cfg.tls_cert.is_empty() || cfg.tls_key.is_empty() {
        return Err(CollectorError::Config(
            "tls_listen needs tls_cert and tls_key (PEM files for the collector's certificate)"
                .into(),
        ));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.tls_cert)
        .map_err(|e| bad(&format!("tls_cert {}", cfg.tls_cert), &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&format!("tls_cert {}", cfg.tls_cert), &e))?;
    let key = PrivateKeyDer::from_pem_file(&cfg.tls_key)
        .map_err(|e| bad(&format!("tls_key {}", cfg.tls_key), &e))?;
    let builder = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS", &e))?;
    let config = if cfg.tls_client_ca.is_empty() {
        builder.with_no_client_auth().with_single_cert(certs, key)
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&cfg.tls_client_ca)
            .map_err(|e| bad("tls_client_ca", &e))?
        {
            roots
                .add(c.map_err(|e| bad("tls_client_ca", &e))?)
                .map_err(|e| bad("tls_client_ca", &e))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| bad("tls_client_ca", &e))?;
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
    }
    .map_err(|e| bad("TLS certificate and key", &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn http_client(cfg: &CollectorConfig) -> Result<reqwest::Client, CollectorError> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(format!("watchhouse-collector/{VERSION}"));
    if !cfg.ca_cert.is_empty() {
        let pem = std::fs::read(&cfg.ca_cert)
            .map_err(|e| CollectorError::Config(format!("ca_cert {}: {e}", cfg.ca_cert)))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| CollectorError::Config(format!("ca_cert {}: {e}", cfg.ca_cert)))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| CollectorError::Config(format!("HTTP client: {e}")))
}

async fn ensure_enrolled(
    cfg: &CollectorConfig,
    client: &reqwest::Client,
) -> Result<(Credential, Option<CollectorSettings>), CollectorError> {
    let path = cfg.data_dir.join("credential.json");
    if let Ok(bytes) = std::fs::read(&path) {
        let c: Credential = serde_json::from_slice(&bytes).map_err(|e| {
            CollectorError::Config(format!(
                "{} is damaged ({e}); delete it and enrol again with a new token",
                path.display()
            ))
        })?;
        return Ok((c, None));
    }
    if cfg.enrolment_token.trim().is_empty() {
        return Err(CollectorError::Config(format!(
            "this collector is not enrolled yet: run it once with --enrol-token TOKEN (ask your Watchhouse administrator for a token); its credential will be kept in {}",
            path.display()
        )));
    }
    let url = format!("{}/api/v1/enrol", cfg.hub_url.trim_end_matches('/'));
    let res = client
        .post(&url)
        .json(&EnrolRequest {
            token: cfg.enrolment_token.trim().to_owned(),
            name: cfg.name.clone(),
            version: VERSION.into(),
        })
        .send()
        .await
        .map_err(|e| CollectorError::Enrol(format!("cannot reach the hub at {url}: {e}")))?;
    if !res.status().is_success() {
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<watchhouse_proto::ApiError>(&body)
            .map(|e| e.message)
            .unwrap_or(body);
        return Err(CollectorError::Enrol(format!(
            "hub answered {status}: {msg}"
        )));
    }
    let er: EnrolResponse = res
        .json()
        .await
        .map_err(|e| CollectorError::Enrol(format!("unexpected answer from the hub: {e}")))?;
    let cred = Credential {
        collector_id: er.collector_id,
        member_id: er.member_id,
        credential: er.credential,
        hub_url: cfg.hub_url.clone(),
    };
    write_private(&path, &serde_json::to_vec_pretty(&cred).unwrap_or_default())
        .map_err(|e| CollectorError::Io(format!("cannot save {}: {e}", path.display())))?;
    tracing::info!(%cred, "enrolled");
    Ok((cred, Some(er.settings)))
}

/// Live settings, updated from the hub.
#[derive(Debug)]
struct Live {
    policy: EdgePolicy,
    upload_interval: Duration,
    /// The watchlist in use and its version.
    watchlist: Option<(String, Arc<watchhouse_intel::Matcher>)>,
    /// The version the hub last announced.
    wanted_watchlist: String,
}

/// The hub's watchlist: one address, block, domain or URL per line.
fn watchlist_matcher(text: &str) -> watchhouse_intel::Matcher {
    let mut b = watchhouse_intel::MatcherBuilder::new();
    let Some(f) = b.add_feed(watchhouse_intel::FeedInfo::new(
        "hub watchlist",
        "watchlist",
    )) else {
        return b.build();
    };
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Ok(v) = watchhouse_intel::IndicatorValue::parse(line) {
            b.add(f, &watchhouse_intel::Indicator::new(v));
        }
    }
    b.build()
}

fn apply_settings(live: &RwLock<Live>, s: &CollectorSettings, default_interval: u64) {
    let (policy, errors) = EdgePolicy::new(&s.member_networks, s.send_outbound);
    for e in errors {
        tracing::warn!(error = %e, "ignoring member network");
    }
    let ms = if s.upload_interval_ms == 0 {
        default_interval
    } else {
        s.upload_interval_ms
    };
    let mut l = live.write().unwrap_or_else(|p| p.into_inner());
    l.policy = policy.with_watchlist(l.watchlist.as_ref().map(|(_, m)| m.clone()));
    l.upload_interval = Duration::from_millis(ms.clamp(100, 3_600_000));
    l.wanted_watchlist = s.watchlist_version.clone();
}

fn set_watchlist(live: &RwLock<Live>, version: String, m: Arc<watchhouse_intel::Matcher>) {
    let mut l = live.write().unwrap_or_else(|p| p.into_inner());
    l.policy = l.policy.clone().with_watchlist(Some(m.clone()));
    l.watchlist = Some((version, m));
}

/// Health counters, shared by the pipeline's tasks.
#[derive(Debug, Default)]
pub struct Health {
    stats: CollectorStats,
    samples: VecDeque<UnparsedSample>,
}

/// Samples kept.
const MAX_SAMPLES: usize = 20;

impl Health {
    fn unparsed(&mut self, format: Option<Format>, reason: &Reason, line: &[u8], now: i64) {
        let fmt = format.map(|f| f.as_str()).unwrap_or("unknown");
        *self
            .stats
            .unparsed
            .entry(format!("{fmt}:{}", reason.code()))
            .or_default() += 1;
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        let cut = &line[..line.len().min(MAX_SAMPLE_BYTES)];
        self.samples.push_back(UnparsedSample {
            format: fmt.into(),
            reason: reason.code().into(),
            line: String::from_utf8_lossy(cut).into_owned(),
            at_ms: now,
        });
    }

    /// A snapshot for a batch or for display.
    pub fn snapshot(&self) -> CollectorStats {
        let mut s = self.stats.clone();
        s.samples = self.samples.iter().cloned().collect();
        s
    }
}

/// What a spooled batch carries besides its body (one JSON line in the spool file's header).
#[derive(Debug, Serialize, Deserialize)]
struct SpoolMeta {
    batch_id: Uuid,
    /// `zstd`, `gzip` or `identity`.
    encoding: String,
    /// Spool sequence number of this batch.
    seq: u64,
    /// File positions after this batch's lines.
    positions: HashMap<String, FilePos>,
}

/// The checkpoint file: file positions as of a spool sequence number.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    seq: u64,
    positions: HashMap<String, FilePos>,
}

/// File positions at start-up: the checkpoint file, overridden by any batch still in the spool
/// that was written after it (a crash between spooling a batch and saving the checkpoint
/// must neither lose nor re-read its lines).
fn recover_positions(path: &Path, spool: &Spool) -> HashMap<String, FilePos> {
    let mut cp: Checkpoint = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for m in spool.metas_after(cp.seq) {
        if let Ok(meta) = serde_json::from_str::<SpoolMeta>(&m) {
            if meta.seq > cp.seq {
                cp.seq = meta.seq;
                cp.positions.extend(meta.positions);
            }
        }
    }
    cp.positions
}

/// Batches travel and rest compressed with zstd (level 3): on firewall logs it is about twice as
/// small as gzip -6 and several times faster (bench: pipeline_throughput).
fn compress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(body, 3)
}

/// A running collector.
pub struct Running {
    /// Bound UDP addresses (useful when configured with port 0).
    pub udp_addrs: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Bound syslog-over-TLS addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// Health counters.
    pub health: Arc<Mutex<Health>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pipeline: JoinHandle<()>,
    shipper: JoinHandle<()>,
}

impl Running {
    /// Stops the sources, seals what was received into the spool, gives the shipper up to
    /// `grace` to deliver, and returns. Whatever was not delivered stays spooled for next time.
    pub async fn stop(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.pipeline.await;
        let _ = tokio::time::timeout(grace, self.shipper).await;
        let h = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot();
        tracing::info!(
            lines_received = h.lines_received,
            parsed = h.parsed.values().sum::<u64>(),
            unparsed = h.unparsed.values().sum::<u64>(),
            withheld = h.withheld.values().sum::<u64>(),
            "collector stopped"
        );
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Enrols if needed, binds every source and starts the pipeline.
pub async fn start(cfg: CollectorConfig) -> Result<Running, CollectorError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        CollectorError::Io(format!("cannot create {}: {e}", cfg.data_dir.display()))
    })?;
    let tz = if cfg.timezone.eq_ignore_ascii_case("utc") {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::get(&cfg.timezone)
            .map_err(|e| CollectorError::Config(format!("timezone `{}`: {e}", cfg.timezone)))?
    };
    let syslog_format = parse_format(&cfg.format)?;
    let client = http_client(&cfg)?;
    let (cred, fresh_settings) = ensure_enrolled(&cfg, &client).await?;

    let live = Arc::new(RwLock::new(Live {
        policy: EdgePolicy::default(),
        upload_interval: Duration::from_millis(cfg.upload_interval_ms.max(100)),
        watchlist: None,
        wanted_watchlist: String::new(),
    }));
    // The last watchlist, so outbound reporting works from the first line after a restart.
    let watchlist_path = cfg.data_dir.join("watchlist.txt");
    if let Ok(text) = std::fs::read_to_string(&watchlist_path) {
        if let Some((version, list)) = text.split_once('\n') {
            set_watchlist(&live, version.to_owned(), Arc::new(watchlist_matcher(list)));
        }
    }
    let settings_path = cfg.data_dir.join("settings.json");
    let saved: Option<CollectorSettings> = fresh_settings.or_else(|| {
        std::fs::read(&settings_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    if let Some(s) = &saved {
        apply_settings(&live, s, cfg.upload_interval_ms);
        let _ = write_private(&settings_path, &serde_json::to_vec(s).unwrap_or_default());
    }

    let spool = Spool::open(&cfg.data_dir.join("spool"), cfg.spool_max_bytes)
        .map_err(|e| CollectorError::Io(e.to_string()))?;
    let spool = Arc::new(Mutex::new(spool));
    let health = Arc::new(Mutex::new(Health::default()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel::<Input>(65_536);

    // Sources: index 0 is syslog; files follow.
    let mut formats: Vec<Option<Format>> = vec![syslog_format];
    let mut tasks = Vec::new();
    let mut udp_addrs = Vec::new();
    let mut tcp_addrs = Vec::new();
    for a in &cfg.udp_listen {
        let sock = bind_udp(a, cfg.udp_receive_buffer).map_err(|e| {
            CollectorError::Config(format!("cannot listen for syslog on udp {a}: {e}"))
        })?;
        udp_addrs.push(
            sock.local_addr()
                .map_err(|e| CollectorError::Io(e.to_string()))?,
        );
        tasks.push(tokio::spawn(sources::udp(
            sock,
            0,
            tx.clone(),
            shutdown_rx.clone(),
        )));
    }
    for a in &cfg.tcp_listen {
        let l = TcpListener::bind(a).await.map_err(|e| {
            CollectorError::Config(format!("cannot listen for syslog on tcp {a}: {e}"))
        })?;
        tcp_addrs.push(
            l.local_addr()
                .map_err(|e| CollectorError::Io(e.to_string()))?,
        );
        tasks.push(tokio::spawn(sources::tcp(
            l,
            0,
            tx.clone(),
            shutdown_rx.clone(),
        )));
    }
    let mut tls_addrs = Vec::new();
    if !cfg.tls_listen.is_empty() {
        let acceptor = tls_acceptor(&cfg)?;
        for a in &cfg.tls_listen {
            let l = TcpListener::bind(a).await.map_err(|e| {
                CollectorError::Config(format!("cannot listen for syslog over TLS on {a}: {e}"))
            })?;
            tls_addrs.push(
                l.local_addr()
                    .map_err(|e| CollectorError::Io(e.to_string()))?,
            );
            tasks.push(tokio::spawn(sources::tls(
                l,
                acceptor.clone(),
                0,
                tx.clone(),
                shutdown_rx.clone(),
            )));
        }
    }
    let checkpoints_path = cfg.data_dir.join("checkpoints.json");
    let saved_pos = recover_positions(
        &checkpoints_path,
        &spool.lock().unwrap_or_else(|p| p.into_inner()),
    );
    let (inode_tx, inode_rx) = mpsc::unbounded_channel();
    let mut file_paths = Vec::new();
    for (i, f) in cfg.files.iter().enumerate() {
        formats.push(parse_format(&f.format)?);
        let key = f.path.display().to_string();
        file_paths.push(key.clone());
        tasks.push(tokio::spawn(sources::tail(
            f.path.clone(),
            formats.len() - 1,
            i,
            saved_pos.get(&key).copied(),
            tx.clone(),
            shutdown_rx.clone(),
            Duration::from_millis(250),
            inode_tx.clone(),
        )));
    }
    drop(tx);
    drop(inode_tx);

    let notify = Arc::new(Notify::new());
    let pipeline = tokio::spawn(pipeline(Pipeline {
        rx,
        formats,
        tz,
        live: live.clone(),
        batch_max: cfg
            .batch_max_events
            .clamp(1, watchhouse_proto::MAX_BATCH_EVENTS),
        spool: spool.clone(),
        health: health.clone(),
        notify: notify.clone(),
        checkpoints_path,
        file_paths,
        positions: saved_pos,
        inode_rx,
        agg: Aggregator::new(
            cfg.aggregate_window_secs as i64 * 1000,
            cfg.aggregate_max_flows,
        ),
        last_batch_events: 0,
    }));
    let shipper = tokio::spawn(shipper(Shipper {
        heartbeat_url: format!(
            "{}/api/v1/collector/heartbeat",
            cfg.hub_url.trim_end_matches('/')
        ),
        heartbeat_every: Duration::from_secs(cfg.heartbeat_secs.max(1)),
        watchlist_url: format!(
            "{}/api/v1/collector/watchlist",
            cfg.hub_url.trim_end_matches('/')
        ),
        watchlist_path,
        client,
        url: format!("{}/api/v1/ingest", cfg.hub_url.trim_end_matches('/')),
        credential: cred.credential,
        spool,
        health: health.clone(),
        live,
        notify,
        settings_path,
        default_interval: cfg.upload_interval_ms,
        shutdown: shutdown_rx,
    }));
    tracing::info!(udp = ?udp_addrs, tcp = ?tcp_addrs, tls = ?tls_addrs, files = cfg.files.len(), "collector running");
    Ok(Running {
        udp_addrs,
        tcp_addrs,
        tls_addrs,
        health,
        shutdown: shutdown_tx,
        tasks,
        pipeline,
        shipper,
    })
}

struct Pipeline {
    rx: mpsc::Receiver<Input>,
    formats: Vec<Option<Format>>,
    tz: jiff::tz::TimeZone,
    live: Arc<RwLock<Live>>,
    batch_max: usize,
    spool: Arc<Mutex<Spool>>,
    health: Arc<Mutex<Health>>,
    notify: Arc<Notify>,
    checkpoints_path: PathBuf,
    file_paths: Vec<String>,
    positions: HashMap<String, FilePos>,
    inode_rx: mpsc::UnboundedReceiver<(usize, u64)>,
    agg: Aggregator,
    /// Events represented by the batch being sealed (for counting a failed spool write).
    last_batch_events: u64,
}

impl Pipeline {
    fn handle(
        &mut self,
        input: Input,
        ctx: &TimeContext,
        batch: &mut Vec<Event>,
        pending: &mut BTreeMap<usize, u64>,
    ) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        h.stats.lines_received += 1;
        match input {
            Input::Bad {
                source,
                reason,
                sample,
            } => {
                let fmt = self.formats.get(source).copied().flatten();
                h.unparsed(fmt, &reason, &sample, ctx.now_ms);
            }
            Input::Line {
                source,
                bytes,
                checkpoint,
            } => {
                let from_file = checkpoint.is_some();
                if let Some((file, offset)) = checkpoint {
                    pending.insert(file, offset);
                }
                let forced = self.formats.get(source).copied().flatten();
                match parse_line(&bytes, ctx, forced) {
                    Ok(mut e) => {
                        *h.stats.parsed.entry(e.format.as_str().into()).or_default() += 1;
                        let verdict = self
                            .live
                            .read()
                            .unwrap_or_else(|p| p.into_inner())
                            .policy
                            .classify(&e);
                        match verdict {
                            Verdict::Send(d) => {
                                e.direction = d;
                                self.agg.push(e, from_file, batch);
                            }
                            Verdict::Withhold(reason) => {
                                *h.stats.withheld.entry(reason.into()).or_default() += 1;
                            }
                        }
                    }
                    Err(u) => h.unparsed(u.format, &u.reason, &bytes, ctx.now_ms),
                }
            }
        }
    }

    async fn seal(&mut self, batch: &mut Vec<Event>, pending: &mut BTreeMap<usize, u64>) {
        // Repeats counted from file lines go out with the lines' checkpoint.
        self.agg.flush_files(batch);
        while let Ok((i, ino)) = self.inode_rx.try_recv() {
            if let Some(p) = self.file_paths.get(i) {
                let e = self.positions.entry(p.clone()).or_default();
                if e.inode != ino {
                    *e = FilePos {
                        inode: ino,
                        offset: 0,
                    };
                }
            }
        }
        // File positions advance only with the batch that holds their lines.
        let mut positions = self.positions.clone();
        for (i, off) in pending.iter() {
            if let Some(p) = self.file_paths.get(*i) {
                positions.entry(p.clone()).or_default().offset = *off;
            }
        }
        if batch.is_empty() && pending.is_empty() {
            return;
        }
        let body = if batch.is_empty() {
            None
        } else {
            let mut stats = {
                let h = self.health.lock().unwrap_or_else(|p| p.into_inner());
                h.snapshot()
            };
            stats.spool_batches = self.spool.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
            let b = Batch {
                version: WIRE_VERSION,
                batch_id: Uuid::now_v7(),
                collector_version: VERSION.into(),
                sealed_at_ms: now_ms(),
                events: std::mem::take(batch),
                stats: Some(stats),
            };
            self.last_batch_events = b.events.iter().map(|e| e.count.max(1) as u64).sum();
            match compress(&b.to_wire_json()) {
                Ok(z) => Some((b.batch_id, z)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode batch");
                    return;
                }
            }
        };
        let represented: u64 = body.as_ref().map_or(0, |_| self.last_batch_events);
        let spool = self.spool.clone();
        let checkpoints_path = self.checkpoints_path.clone();
        let pos = positions.clone();
        let pushed = tokio::task::spawn_blocking(move || -> Result<u64, String> {
            // Under the spool lock: the shipper cannot see (and so cannot ship and delete) the
            // batch before its positions are saved.
            let mut sp = spool.lock().unwrap_or_else(|p| p.into_inner());
            let mut dropped = 0;
            let seq = match body {
                Some((batch_id, z)) => {
                    let seq = sp.next_seq();
                    let meta = SpoolMeta {
                        batch_id,
                        encoding: "zstd".into(),
                        seq,
                        positions: pos.clone(),
                    };
                    let meta = serde_json::to_string(&meta).map_err(|e| e.to_string())?;
                    dropped = sp.push(&z, &meta).map_err(|e| e.to_string())?.1;
                    seq
                }
                None => sp.next_seq().saturating_sub(1),
            };
            let cp = serde_json::to_vec(&Checkpoint {
                seq,
                positions: pos,
            })
            .map_err(|e| e.to_string())?;
            write_private(&checkpoints_path, &cp)
                .map_err(|e| format!("cannot save file checkpoints: {e}"))?;
            Ok(dropped)
        })
        .await;
        match pushed {
            Ok(Ok(dropped)) => {
                self.positions = positions;
                pending.clear();
                if dropped > 0 {
                    let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
                    *h.stats
                        .withheld
                        .entry("spool_full_batches_dropped".into())
                        .or_default() += dropped;
                    h.stats.last_error =
                        Some(format!("spool full: dropped {dropped} oldest batches"));
                }
                self.notify.notify_one();
            }
            Ok(Err(e)) => {
                // File lines will be read again (their positions did not move); syslog lines
                // cannot be: count them, so the loss is visible to the member and the hub.
                tracing::error!(error = %e, events = represented, "cannot spool batch");
                let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
                *h.stats
                    .withheld
                    .entry("spool_write_failed_events".into())
                    .or_default() += represented;
                h.stats.last_error = Some(e);
            }
            Err(e) => tracing::error!(error = %e, "spool task failed"),
        }
    }
}

async fn pipeline(mut p: Pipeline) {
    let mut batch: Vec<Event> = Vec::new();
    let mut pending: BTreeMap<usize, u64> = BTreeMap::new();
    let mut last_seal = Instant::now();
    let mut ctx = TimeContext::new(now_ms(), p.tz.clone());
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            msg = p.rx.recv() => match msg {
                Some(input) => {
                    let now = now_ms();
                    if now - ctx.now_ms >= 1000 {
                        ctx = TimeContext::new(now, p.tz.clone());
                    } else {
                        ctx.now_ms = now;
                    }
                    p.handle(input, &ctx, &mut batch, &mut pending);
                    if batch.len() >= p.batch_max {
                        p.seal(&mut batch, &mut pending).await;
                        last_seal = Instant::now();
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                p.agg.flush_due(now_ms(), &mut batch);
                let interval = p.live.read().unwrap_or_else(|e| e.into_inner()).upload_interval;
                if (!batch.is_empty() || !pending.is_empty()) && last_seal.elapsed() >= interval {
                    p.seal(&mut batch, &mut pending).await;
                    last_seal = Instant::now();
                }
            }
        }
    }
    p.agg.flush_all(&mut batch);
    p.seal(&mut batch, &mut pending).await;
}

struct Shipper {
    heartbeat_url: String,
    heartbeat_every: Duration,
    watchlist_url: String,
    watchlist_path: PathBuf,
    client: reqwest::Client,
    url: String,
    credential: String,
    spool: Arc<Mutex<Spool>>,
    health: Arc<Mutex<Health>>,
    live: Arc<RwLock<Live>>,
    notify: Arc<Notify>,
    settings_path: PathBuf,
    default_interval: u64,
    shutdown: watch::Receiver<bool>,
}

enum Shipped {
    Done,
    Rejected(String),
    Retry(String),
}

impl Shipper {
    /// Tells the hub this collector is alive and healthy; applies the settings it answers.
    async fn heartbeat(&self) -> bool {
        let mut stats = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot();
        stats.spool_batches = self.spool.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        let hb = watchhouse_proto::Heartbeat {
            collector_version: VERSION.into(),
            stats,
        };
        match self
            .client
            .post(&self.heartbeat_url)
            .bearer_auth(&self.credential)
            .json(&hb)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => match r.json::<CollectorSettings>().await {
                Ok(settings) => {
                    apply_settings(&self.live, &settings, self.default_interval);
                    let _ = write_private(
                        &self.settings_path,
                        &serde_json::to_vec(&settings).unwrap_or_default(),
                    );
                    true
                }
                Err(_) => false,
            },
            Ok(r) => {
                tracing::warn!(status = %r.status(), "heartbeat refused");
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                false
            }
        }
    }

    /// Fetches the watchlist when the hub announced a version this collector does not have.
    async fn refresh_watchlist(&self) {
        let (wanted, have) = {
            let l = self.live.read().unwrap_or_else(|p| p.into_inner());
            (
                l.wanted_watchlist.clone(),
                l.watchlist.as_ref().map(|(v, _)| v.clone()),
            )
        };
        if wanted.is_empty() || have.as_deref() == Some(wanted.as_str()) {
            return;
        }
        let res = self
            .client
            .get(&self.watchlist_url)
            .bearer_auth(&self.credential)
            .send()
            .await;
        let body = match res {
            Ok(r) if r.status().is_success() => {
                let version = r
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim_matches('"').to_owned())
                    .unwrap_or_default();
                r.bytes().await.map(|b| (version, b))
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "cannot fetch the watchlist");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the watchlist");
                return;
            }
        };
        let Ok((version, gz)) = body else { return };
        let path = self.watchlist_path.clone();
        let built =
            tokio::task::spawn_blocking(move || -> Option<(String, watchhouse_intel::Matcher)> {
                use std::io::Read;
                let mut text = String::new();
                // The body is bounded by the hub; still, never expand beyond 256 MiB.
                flate2::read::GzDecoder::new(&gz[..])
                    .take(256 << 20)
                    .read_to_string(&mut text)
                    .ok()?;
                let _ = write_private(&path, format!("{version}\n{text}").as_bytes());
                Some((version, watchlist_matcher(&text)))
            })
            .await;
        if let Ok(Some((version, m))) = built {
            tracing::info!(%version, entries = m.len(), "watchlist updated");
            set_watchlist(&self.live, version, Arc::new(m));
        }
    }

    async fn ship(&self, meta: &str, body: Vec<u8>) -> Shipped {
        let meta: SpoolMeta = match serde_json::from_str(meta) {
            Ok(m) => m,
            Err(e) => return Shipped::Rejected(format!("spooled batch header unreadable: {e}")),
        };
        let id = meta.batch_id;
        let mut req = self
            .client
            .post(&self.url)
            .bearer_auth(&self.credential)
            .header(IDEMPOTENCY_HEADER, id.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if meta.encoding != "identity" {
            req = req.header(reqwest::header::CONTENT_ENCODING, meta.encoding.as_str());
        }
        let res = req.body(body).send().await;
        let res = match res {
            Ok(r) => r,
            Err(e) => return Shipped::Retry(format!("cannot reach the hub: {e}")),
        };
        let status = res.status();
        if status.is_success() {
            match res.json::<IngestResponse>().await {
                Ok(r) => {
                    apply_settings(&self.live, &r.settings, self.default_interval);
                    let _ = write_private(
                        &self.settings_path,
                        &serde_json::to_vec(&r.settings).unwrap_or_default(),
                    );
                    if r.rejected > 0 {
                        tracing::warn!(batch = %id, rejected = r.rejected, "hub refused some events");
                    }
                    Shipped::Done
                }
                // The hub stored it but the answer was lost or garbled: retrying is safe.
                Err(e) => Shipped::Retry(format!("unreadable acknowledgement: {e}")),
            }
        } else {
            let text = res.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<watchhouse_proto::ApiError>(&text)
                .map(|e| format!("{} ({})", e.message, e.code))
                .unwrap_or_else(|_| text.chars().take(200).collect());
            match status.as_u16() {
                400 | 413 | 422 => Shipped::Rejected(format!("hub refused the batch: {msg}")),
                _ => Shipped::Retry(format!("hub answered {status}: {msg}")),
            }
        }
    }
}

async fn shipper(s: Shipper) {
    let mut backoff = Duration::from_millis(250);
    let mut shutdown = s.shutdown.clone();
    let mut last_contact: Option<Instant> = None;
    loop {
        let entries = {
            let sp = s.spool.lock().unwrap_or_else(|p| p.into_inner());
            sp.entries().unwrap_or_default()
        };
        if entries.is_empty() {
            if *shutdown.borrow() {
                return;
            }
            if last_contact.is_none_or(|t| t.elapsed() >= s.heartbeat_every) && s.heartbeat().await
            {
                last_contact = Some(Instant::now());
            }
            s.refresh_watchlist().await;
            tokio::select! {
                _ = s.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for e in entries {
            let body = s.spool.lock().unwrap_or_else(|p| p.into_inner()).read(&e);
            let body = match body {
                Ok(b) => b,
                Err(err) => {
                    tracing::error!(error = %err, "spooled batch unreadable");
                    s.health
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .stats
                        .last_error = Some(err.to_string());
                    // Never spin on a failing disk: wait before the next attempt.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    break;
                }
            };
            let (meta, body) = body;
            match s.ship(&meta, body).await {
                Shipped::Done => {
                    backoff = Duration::from_millis(250);
                    last_contact = Some(Instant::now());
                    s.refresh_watchlist().await;
                    let _ = s.spool.lock().unwrap_or_else(|p| p.into_inner()).remove(&e);
                }
                Shipped::Rejected(msg) => {
                    tracing::error!(error = %msg, "batch refused; kept in spool/rejected");
                    let _ = s.spool.lock().unwrap_or_else(|p| p.into_inner()).reject(&e);
                    s.health
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .stats
                        .last_error = Some(msg);
                }
                Shipped::Retry(msg) => {
                    tracing::warn!(error = %msg, retry_in = ?backoff, "shipping failed; will retry");
                    s.health
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .stats
                        .last_error = Some(msg);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    break;
                }
            }
        }
    }
}
