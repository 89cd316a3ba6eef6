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

/// A known-bad list file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Short name shown in alerts, e.g. `firehol_level1`.
    pub name: String,
    /// Path of a plain IP/CIDR list (FireHOL `.netset`/`.ipset`, Spamhaus DROP, …).
    pub path: PathBuf,
    /// What it lists, e.g. `attacks`.
    #[serde(default = "default_category")]
    pub category: String,
}

fn default_category() -> String {
    "attacks".into()
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
    /// Known-bad lists loaded at start and re-read when their files change.
    pub feeds: Vec<FeedConfig>,
    /// Seconds between checks of the feed files for changes.
    pub feed_check_secs: u64,
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
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            data_dir: PathBuf::from("./watchhouse-data"),
            database: String::new(),
            feeds: Vec::new(),
            feed_check_secs: 30,
            dedup_window_secs: 86_400,
            upload_interval_ms: 2_000,
            max_event_age_days: 30,
            max_event_future_secs: 300,
            session_hours: 12,
            secure_cookies: CookieSecurity::Auto,
            login_max_failures: 5,
            login_window_secs: 900,
            enrolment_token_hours: 72,
        }
    }
}

impl HubConfig {
    /// True when the hub serves HTTPS itself.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert.is_empty()
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
