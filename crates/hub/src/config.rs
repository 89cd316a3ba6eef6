//! The hub's section of the configuration file (`[hub]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// When session cookies carry the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CookieSecurity {
    /// Secure unless the hub listens on a loopback address (local demo and tests over HTTP).
    #[default]
    Auto,
    /// Always (the hub is behind a TLS-terminating proxy).
    Always,
    /// Never (not recommended).
    Never,
}

/// An intelligence feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Short name shown in alerts, e.g. `firehol_level1`.
    pub name: String,
    /// Where to fetch it: `https://…`, `http://…`, `file:///…` or a local path. For `taxii`, the
    /// collection URL (ending in `/`); for `misp`, the feed's base URL (where `manifest.json` is).
    #[serde(alias = "path")]
    pub url: String,
    /// `auto` (guessed from the content) or one of `netset`, `spamhaus_json`, `feodo_csv`,
    /// `threatfox_csv`, `urlhaus_csv`, `tor_exits`, `domains`, `stix`, `taxii`, `misp`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Category of its entries when the feed does not say, e.g. `attacks`, `botnet_c2`;
    /// empty takes a FireHOL header's `Category`, else `attacks`.
    #[serde(default)]
    pub category: String,
    /// Default confidence of its entries, 0–100.
    #[serde(default = "default_confidence")]
    pub confidence: u8,
    /// Default TLP of its entries: `clear`, `green`, `amber`, `amber_strict` or `red`.
    #[serde(default = "default_tlp")]
    pub tlp: watchhouse_intel::Tlp,
    /// Who publishes it (shown with its matches), e.g. `abuse.ch Feodo Tracker`.
    #[serde(default)]
    pub provenance: String,
    /// Seconds between refreshes (conditional requests: ETag / If-Modified-Since). Local files
    /// are re-read as soon as they change.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Entries stop being used this many days after the feed was last fetched successfully
    /// (and TAXII/MISP entries this many days after they were last received), unless the feed
    /// gives its own expiry; 0 keeps them while the feed lists them.
    #[serde(default = "default_expiry")]
    pub expiry_days: u64,
    /// An update with more than this percentage fewer entries than the last good version is
    /// held back (the last good version stays in use) and the administrator is told.
    #[serde(default = "default_shrink")]
    pub max_shrink_pct: u8,
    /// Whether its entries may be shared onwards (TAXII, STIX and MISP exports), within their
    /// TLP. Off by default: many public feeds' terms forbid redistribution.
    #[serde(default)]
    pub share: bool,
    /// Whether its address entries go into the members' firewall blocklists.
    #[serde(default)]
    pub blocklist: bool,
    /// `Authorization` header value for the source (e.g. `Bearer …`, `Basic …`); never logged.
    #[serde(default)]
    pub authorization: String,
    /// Largest download accepted, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

impl FeedConfig {
    /// A feed read from a local file with every other setting at its default.
    pub fn file(name: impl Into<String>, path: impl AsRef<std::path::Path>) -> FeedConfig {
        FeedConfig {
            name: name.into(),
            url: path.as_ref().display().to_string(),
            format: default_format(),
            category: String::new(),
            confidence: default_confidence(),
            tlp: default_tlp(),
            provenance: String::new(),
            refresh_secs: default_refresh(),
            expiry_days: default_expiry(),
            max_shrink_pct: default_shrink(),
            share: false,
            blocklist: false,
            authorization: String::new(),
            max_bytes: default_max_bytes(),
        }
    }
}

fn default_format() -> String {
    "auto".into()
}
fn default_confidence() -> u8 {
    50
}
fn default_tlp() -> watchhouse_intel::Tlp {
    watchhouse_intel::Tlp::Clear
}
fn default_refresh() -> u64 {
    3600
}
fn default_expiry() -> u64 {
    7
}
fn default_shrink() -> u8 {
    50
}
fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}

/// `[hub]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Address to listen on.
    pub listen: String,
    /// PEM certificate chain for HTTPS; empty serves plain HTTP (e.g. behind a TLS proxy).
    pub tls_cert: String,
    /// PEM private key for HTTPS.
    pub tls_key: String,
    /// Directory for the embedded database and files.
    pub data_dir: PathBuf,
    /// Database URL; empty means `sqlite://<data_dir>/watchhouse.db`.
    pub database: String,
    /// Where files (feed copies, evidence) are kept: `file:///dir` or `s3://bucket[/prefix]`;
    /// empty means `file://<data_dir>/files`.
    pub files: String,
    /// S3-compatible endpoint for `s3://` files (empty: AWS).
    pub s3_endpoint: String,
    /// S3 region.
    pub s3_region: String,
    /// S3 access key id; prefer WATCHHOUSE__HUB__S3_ACCESS_KEY.
    pub s3_access_key: String,
    /// S3 secret key; prefer WATCHHOUSE__HUB__S3_SECRET_KEY.
    pub s3_secret_key: String,
    /// Intelligence feeds.
    pub feeds: Vec<FeedConfig>,
    /// Extra CA certificate(s), PEM, trusted for https feeds (partners' TAXII or MISP servers on
    /// a private PKI), besides the public web roots.
    pub feed_ca_file: String,
    /// Seconds between checks whether a feed is due (and local feed files for changes).
    pub feed_check_secs: u64,
    /// Sources seen at this many members or more within `national_days` go into the national
    /// blocklist and the shared sightings.
    pub national_min_members: u32,
    /// The window for the national list, in days.
    pub national_days: u32,
    /// Repeats of the same alert within this many seconds grow the open alert.
    pub dedup_window_secs: u64,
    /// How often collectors should ship, in milliseconds (pushed to them).
    pub upload_interval_ms: u64,
    /// Events older than this many days are refused at ingest (counted, not stored).
    pub max_event_age_days: u64,
    /// Events more than this many seconds in the future are refused at ingest.
    pub max_event_future_secs: u64,
    /// Hours a sign-in lasts.
    pub session_hours: u64,
    /// Secure attribute on cookies.
    pub secure_cookies: CookieSecurity,
    /// Failed sign-ins allowed per account (and 4× per client address) in the window.
    pub login_max_failures: u32,
    /// The login rate-limit window, seconds.
    pub login_window_secs: u64,
    /// Enrolment tokens expire after this many hours.
    pub enrolment_token_hours: u64,
    /// A member's "expected" or "false alarm" feedback holds back repeats for this many days.
    pub feedback_suppress_days: u64,
    /// When this many members call alerts about one listed address false alarms (within 30
    /// days), the intelligence listing it is trusted half as much nationally.
    pub dispute_min_members: u32,
    /// SMTP server for email notifications; empty sends no email.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit TLS, port 465) or `none` (a local relay only).
    pub smtp_security: String,
    /// SMTP user name (empty: no authentication).
    pub smtp_username: String,
    /// SMTP password; prefer WATCHHOUSE__HUB__SMTP_PASSWORD.
    pub smtp_password: String,
    /// The From address of notifications.
    pub smtp_from: String,
    /// The hub's address as members reach it, for links in notifications.
    pub public_url: String,
    /// Seconds between notification rounds: urgent alerts arriving within one round are grouped
    /// into one message per recipient.
    pub notify_interval_secs: u64,
    /// Most urgent messages per recipient (and per webhook) per hour; the rest wait for the
    /// digest.
    pub notify_max_per_hour: u32,
    /// Hour of the day (UTC) the daily digest is sent.
    pub digest_hour_utc: u32,
    /// Day of the week (0 = Monday … 6 = Sunday) members' weekly reports are emailed, at
    /// `digest_hour_utc`, to users who take the daily summary.
    pub weekly_report_weekday: u32,
    /// An IP-to-ASN table (iptoasn.com TSV, e.g. ip2asn-combined.tsv) for the country and
    /// network of attacking sources in reports; empty: not shown.
    pub asn_db: String,
    /// Allow `http://` webhooks (for testing; production webhooks must use https).
    pub webhook_allow_http: bool,
    /// What this process does: `all` (one node: web, API, ingest and background work),
    /// `api` (web, API; collectors' batches go onto the queue) or `worker` (takes batches off
    /// the queue, detects and stores them; runs notifications and retention when it holds the
    /// lease). `api` and `worker` need a shared database and `queue`.
    pub role: HubRole,
    /// The queue between API nodes and workers: empty stores batches in the request (one
    /// node), `nats://HOST:PORT` uses NATS JetStream (scale-out).
    pub queue: String,
    /// The JetStream stream (and subject prefix) for batches.
    pub queue_stream: String,
    /// A batch taken by a worker and not acknowledged within this many seconds (the worker
    /// died) is delivered again.
    pub queue_ack_wait_secs: u64,
    /// Partitions of the queue. A member's batches always go to the same partition, and each
    /// partition to one worker at a time (leases), so the stateful detections see all of a
    /// member's traffic. More partitions than workers; the same on every process.
    pub queue_partitions: u32,
    /// Partitions a worker serves at once (one partition's batches stay in order).
    pub queue_worker_concurrency: u32,
    /// Batches whose compressed body is larger than this go through the file store, with only
    /// a reference on the queue (NATS refuses messages over its max_payload, 1 MiB by default).
    pub queue_inline_max_bytes: usize,
    /// Raw events older than this many days are removed (rollups, alerts and reports stay);
    /// 0 keeps them for ever.
    pub event_retention_days: u64,
    /// Detection thresholds: the `[detect]` section, copied here at start.
    #[serde(skip)]
    pub detect: watchhouse_detect::Thresholds,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            data_dir: PathBuf::from("./watchhouse-data"),
            database: String::new(),
            files: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_access_key: String::new(),
            s3_secret_key: String::new(),
            feeds: Vec::new(),
            feed_ca_file: String::new(),
            feed_check_secs: 30,
            national_min_members: 3,
            national_days: 7,
            dedup_window_secs: 86_400,
            upload_interval_ms: 2_000,
            max_event_age_days: 30,
            max_event_future_secs: 300,
            session_hours: 12,
            secure_cookies: CookieSecurity::Auto,
            login_max_failures: 5,
            login_window_secs: 900,
            enrolment_token_hours: 72,
            feedback_suppress_days: 30,
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            smtp_from: "Watchhouse <alerts@watchhouse.invalid>".into(),
            public_url: String::new(),
            notify_interval_secs: 5,
            notify_max_per_hour: 10,
            digest_hour_utc: 7,
            weekly_report_weekday: 0,
            asn_db: String::new(),
            webhook_allow_http: false,
            dispute_min_members: 3,
            role: HubRole::All,
            queue: String::new(),
            queue_stream: "WATCHHOUSE_INGEST".into(),
            queue_ack_wait_secs: 60,
            queue_partitions: 16,
            queue_worker_concurrency: 4,
            queue_inline_max_bytes: 768 * 1024,
            event_retention_days: 180,
            detect: watchhouse_detect::Thresholds::default(),
        }
    }
}

/// What a hub process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HubRole {
    /// Everything in one process (the embedded default).
    #[default]
    All,
    /// Web UI and API; batches go onto the queue.
    Api,
    /// Takes batches off the queue and stores them; background tasks.
    Worker,
}

impl HubRole {
    /// Parses `all`, `api` or `worker`.
    pub fn from_name(s: &str) -> Option<HubRole> {
        Some(match s {
            "all" => HubRole::All,
            "api" => HubRole::Api,
            "worker" => HubRole::Worker,
            _ => return None,
        })
    }

    /// Serves the web UI and API.
    pub fn serves_api(self) -> bool {
        self != HubRole::Worker
    }

    /// Takes batches off the queue and runs background work.
    pub fn works(self) -> bool {
        self != HubRole::Api
    }
}

impl HubConfig {
    /// Checks that the role, queue and database fit together.
    pub fn check_role(&self) -> Result<(), String> {
        if self.role != HubRole::All && self.queue.is_empty() {
            return Err(format!(
                "role `{}` needs a queue shared with the other hub processes: set hub.queue = \"nats://HOST:4222\" (or --queue)",
                if self.role == HubRole::Api { "api" } else { "worker" }
            ));
        }
        if !self.queue.is_empty() && !self.database_url().starts_with("postgres") {
            return Err(
                "a queue between hub processes needs a database they share: set hub.database = \"postgres://USER@HOST/DB\" (or --database)"
                    .into(),
            );
        }
        if !self.queue.is_empty() && !self.queue.starts_with("nats://") {
            return Err(format!(
                "hub.queue `{}` is not understood: use nats://HOST:PORT, or leave it empty for one process",
                self.queue
            ));
        }
        Ok(())
    }

    /// True when the hub serves HTTPS itself.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert.is_empty()
    }

    /// The file-store URL in effect.
    pub fn files_url(&self) -> String {
        if self.files.is_empty() {
            format!("file://{}", self.data_dir.join("files").display())
        } else {
            self.files.clone()
        }
    }

    /// Opens the file store.
    pub fn open_files(&self) -> Result<watchhouse_files::Files, watchhouse_files::FilesError> {
        let url = self.files_url();
        // A relative data directory still gives an absolute file URL.
        let url = match url.strip_prefix("file://") {
            Some(p) if !p.starts_with('/') => format!(
                "file://{}",
                std::env::current_dir()
                    .unwrap_or_default()
                    .join(p)
                    .display()
            ),
            _ => url,
        };
        watchhouse_files::Files::open(
            &url,
            &watchhouse_files::S3Options {
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                access_key: self.s3_access_key.clone(),
                secret_key: self.s3_secret_key.clone(),
            },
        )
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data_dir.join("watchhouse.db").display())
        } else {
            self.database.clone()
        }
    }
}
