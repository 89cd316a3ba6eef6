//! One TOML file for everything, with commented defaults ([`DEFAULT_CONFIG`]), and every key
//! overridable by `WATCHHOUSE__SECTION__KEY` environment variables.
//!
//! The configuration is never logged whole: it holds secrets (the enrolment token).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use watchhouse_collector::CollectorConfig;
use watchhouse_hub::HubConfig;

/// `[log]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a full tracing filter.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Logging.
    pub log: LogConfig,
    /// The hub.
    pub hub: HubConfig,
    /// The collector.
    pub collector: CollectorConfig,
    /// Detection thresholds (the hub).
    pub detect: watchhouse_detect::Thresholds,
}

/// The configuration file with every default, commented. Printed by `--print-config`.
pub const DEFAULT_CONFIG: &str = r#"# Watchhouse configuration.
#
# Every key can be overridden by an environment variable WATCHHOUSE__SECTION__KEY, for example
#   WATCHHOUSE__HUB__LISTEN=0.0.0.0:8080
#   WATCHHOUSE__COLLECTOR__ENROLMENT_TOKEN=whe_...      (keeps the secret out of this file)
# Values are read as TOML where they parse as TOML (numbers, booleans, ["arrays"]), else as text.

[log]
# error, warn, info, debug, trace, or a tracing filter such as "watchhouse_hub=debug,info".
level = "info"
# text or json.
format = "text"

[hub]
# Address the web UI, API and collector ingest listen on.
listen = "127.0.0.1:8080"
# HTTPS: PEM certificate chain and private key. Empty serves plain HTTP (behind a TLS proxy).
tls_cert = ""
tls_key = ""
# Directory for the embedded database.
data_dir = "./watchhouse-data"
# Database URL; empty means sqlite://<data_dir>/watchhouse.db.
database = ""
# Where files (feed copies, evidence) are kept: file:///dir or s3://bucket[/prefix];
# empty means file://<data_dir>/files. For S3-compatible services set the endpoint and keys
# (prefer WATCHHOUSE__HUB__S3_ACCESS_KEY and WATCHHOUSE__HUB__S3_SECRET_KEY).
files = ""
s3_endpoint = ""
s3_region = ""
s3_access_key = ""
s3_secret_key = ""
# Intelligence feeds. Each has a name and a url (https://, http://, file:// or a local path)
# and optionally: format (auto, netset, spamhaus_json, feodo_csv, threatfox_csv, urlhaus_csv,
# tor_exits, domains, stix, taxii, misp), category, confidence (0-100, default 50),
# tlp (clear, green, amber, amber_strict, red; default clear), provenance,
# refresh_secs (3600; conditional requests), expiry_days (7; 0 = never),
# max_shrink_pct (50: a smaller update is held back), share (false: not re-shared),
# blocklist (false: not in members' blocklists), authorization ("Bearer ..."), max_bytes.
# Replace `feeds = []` with tables such as:
# [[hub.feeds]]
# name = "feodo"
# url = "https://feodotracker.abuse.ch/downloads/ipblocklist.csv"
# category = "botnet_c2"
# confidence = 90
# blocklist = true
feeds = []
# Extra CA certificate(s), PEM, trusted for https feeds on a private PKI (partners' TAXII/MISP).
feed_ca_file = ""
# Seconds between checks whether a feed is due (local feed files are re-read when they change).
feed_check_secs = 30
# Sources seen by at least this many members within national_days form the national list:
# shared as aggregated sightings (never naming members) and added to members' blocklists.
national_min_members = 3
national_days = 7
# A member's "expected" or "false alarm" feedback holds back repeats for this many days.
feedback_suppress_days = 30
# When this many members call alerts about one listed address false alarms (within 30 days),
# the intelligence listing it is trusted half as much nationally.
dispute_min_members = 3
# Email notifications: urgent (high and critical) alerts at once, the rest in a daily digest.
# Empty smtp_host sends no email. smtp_security: starttls, tls or none (a local relay only).
smtp_host = ""
smtp_port = 587
smtp_security = "starttls"
smtp_username = ""
# Prefer WATCHHOUSE__HUB__SMTP_PASSWORD.
smtp_password = ""
smtp_from = "Watchhouse <alerts@watchhouse.invalid>"
# The hub's address as members reach it, for links in notifications.
public_url = ""
# Urgent alerts within one round are grouped into one message per recipient; at most
# notify_max_per_hour urgent messages per recipient and webhook, the rest wait for the digest.
notify_interval_secs = 5
notify_max_per_hour = 10
digest_hour_utc = 7
# Members' weekly reports (the week before, PDF attached) go out on this day (0 = Monday).
weekly_report_weekday = 0
# An IP-to-ASN table in the iptoasn.com TSV format (ip2asn-combined.tsv), downloaded by you,
# for the country and network of attacking sources in reports. Empty: not shown.
asn_db = ""
# Webhooks must use https unless this is set (testing only).
webhook_allow_http = false
# Raw events older than this many days are removed (rollups, alerts and reports stay);
# 0 keeps them for ever.
event_retention_days = 180
# Scale-out (docs/scale-out.md). What this process does: "all" (one node), "api" (web UI and
# API; collectors' batches go onto the queue) or "worker" (takes batches off the queue,
# detects and stores them). api and worker need database = "postgres://..." and a queue.
role = "all"
# The queue between API nodes and workers: empty stores batches in the request (one node);
# nats://HOST:PORT uses NATS JetStream.
queue = ""
queue_stream = "WATCHHOUSE_INGEST"
# A batch a worker took but did not finish within this many seconds is delivered again.
queue_ack_wait_secs = 60
# A member's batches always go to one partition, and each partition to one worker at a time,
# so detections see all of a member's traffic. Same value on every process; more than workers.
queue_partitions = 16
# A worker stores this many partitions' batches at once (each partition's in order).
queue_worker_concurrency = 4
# Larger (compressed) batches travel through the file store, only a reference on the queue.
queue_inline_max_bytes = 786432
# Repeats of the same alert within this many seconds grow the open alert instead of opening another.
dedup_window_secs = 86400
# How often collectors ship, in milliseconds (pushed to every collector).
upload_interval_ms = 2000
# Events older than this many days, or more than max_event_future_secs ahead, are refused (counted).
max_event_age_days = 30
max_event_future_secs = 300
# Hours a sign-in lasts.
session_hours = 12
# Secure cookies: auto (secure unless listening on loopback), always, never.
secure_cookies = "auto"
# Failed sign-ins allowed per account (4x per client address) within the window (seconds).
login_max_failures = 5
login_window_secs = 900
# Collector enrolment tokens expire after this many hours.
enrolment_token_hours = 72

[detect]
# Port scan: one source reaching this many distinct ports, or this many distinct addresses,
# within the window.
scan_window_secs = 60
scan_min_ports = 10
scan_min_hosts = 10
# Brute force: this many attempts from one source on one remote-access service (SSH, RDP, SMB,
# VPN, databases, ...) within the window. Allowed attempts make it high severity.
brute_window_secs = 300
brute_min_attempts = 20
# Campaign: one internet source seen at this many members within the window (counted in whole
# UTC days: the days the window reaches back into, so at least the window). Blocked traffic
# counts; a member is alerted only when the source's traffic got through its firewall.
campaign_min_members = 3
campaign_window_secs = 86400
# Volume anomaly: after this many hours of history, an hour with more than volume_factor_pct
# percent of the member's usual hourly events (and at least volume_min_events) is anomalous.
volume_warmup_hours = 24
volume_factor_pct = 500
volume_min_events = 1000
# Most attacking sources remembered at once (oldest forgotten first).
max_sources = 200000

[collector]
# The hub's base URL (https:// in production).
hub_url = "http://127.0.0.1:8080"
# Directory for the credential, settings, file checkpoints and the spool.
data_dir = "./watchhouse-collector"
# This collector's name, shown to the member and their force.
name = "collector"
# One-time enrolment token; prefer WATCHHOUSE__COLLECTOR__ENROLMENT_TOKEN or --enrol-token.
enrolment_token = ""
# Syslog listeners. Use 0.0.0.0:514 to hear a firewall on the network (needs privileges).
udp_listen = ["127.0.0.1:5514"]
# Kernel receive buffer asked for on UDP listeners, in bytes; bursts wait there instead of being
# dropped. Linux caps it at net.core.rmem_max (the collector warns and says what to raise).
udp_receive_buffer = 33554432
tcp_listen = ["127.0.0.1:5514"]
# Syslog over TLS (RFC 5425), e.g. ["0.0.0.0:6514"], with the collector's certificate and key.
tls_listen = []
tls_cert = ""
tls_key = ""
# When set, senders must present a client certificate signed by this CA (PEM).
tls_client_ca = ""
# Parser for syslog input: auto (detect per line), netfilter, filterlog.
format = "auto"
# Files to follow, e.g. [{ path = "/var/log/ufw.log", format = "auto" }].
files = []
# Zone of timestamps that carry none (RFC 3164): UTC or an IANA name such as Europe/London.
timezone = "UTC"
# A batch is sealed at this many events, or after upload_interval_ms.
batch_max_events = 5000
upload_interval_ms = 2000
# Most bytes the spool may hold; beyond it the oldest batches are dropped (counted, reported).
spool_max_bytes = 536870912
# Repeats of a flow (same source, destination, port, protocol, action) within this many seconds
# are sent as one summary with a count; the first occurrence is always sent at once. 0 = off.
aggregate_window_secs = 60
# Most distinct flows held for aggregation; beyond it events pass through unaggregated.
aggregate_max_flows = 100000
# Extra PEM CA certificate to trust for an https:// hub.
ca_cert = ""
# Seconds without shipping after which the collector sends a heartbeat (health, spool depth).
heartbeat_secs = 60
"#;

/// Loads the file (if given) and applies environment overrides from `vars`.
pub fn load(
    path: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config> {
    let mut table: toml::Table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the configuration file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{} is not valid TOML", p.display()))?
        }
        None => toml::Table::new(),
    };
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix("WATCHHOUSE__") else {
            continue;
        };
        let parts: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let [section, key] = parts.as_slice() else {
            bail!("environment variable {k}: expected WATCHHOUSE__SECTION__KEY");
        };
        let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(v));
        let sec = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match sec {
            toml::Value::Table(t) => {
                t.insert(key.clone(), value);
            }
            _ => bail!("environment variable {k}: [{section}] is not a section"),
        }
    }
    Config::deserialize(toml::Value::Table(table))
        .context("invalid configuration (see `watchhouse hub --print-config` for every key)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_defaults_match_the_code() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn environment_overrides_every_kind_of_value() {
        let c = load(
            None,
            [
                (
                    "WATCHHOUSE__HUB__LISTEN".to_string(),
                    "0.0.0.0:9000".to_string(),
                ),
                ("WATCHHOUSE__HUB__SESSION_HOURS".into(), "3".into()),
                (
                    "WATCHHOUSE__COLLECTOR__UDP_LISTEN".into(),
                    r#"["127.0.0.1:1514"]"#.into(),
                ),
                (
                    "WATCHHOUSE__COLLECTOR__ENROLMENT_TOKEN".into(),
                    "whe_abc".into(),
                ),
                ("OTHER".into(), "x".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.hub.listen, "0.0.0.0:9000");
        assert_eq!(c.hub.session_hours, 3);
        assert_eq!(c.collector.udp_listen, vec!["127.0.0.1:1514".to_string()]);
        assert_eq!(c.collector.enrolment_token, "whe_abc");
    }

    #[test]
    fn unknown_keys_are_errors_that_name_them() {
        let err = load(
            None,
            [("WATCHHOUSE__HUB__LISTNE".to_string(), "x".to_string())],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
        let err = load(None, [("WATCHHOUSE__HUB".to_string(), "x".to_string())]).unwrap_err();
        assert!(format!("{err:#}").contains("SECTION__KEY"));
    }

    #[test]
    fn file_then_environment() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("wh.toml");
        std::fs::write(&p, "[hub]\nlisten = \"127.0.0.1:1\"\nsession_hours = 1\n").unwrap();
        let c = load(
            Some(&p),
            [(
                "WATCHHOUSE__HUB__SESSION_HOURS".to_string(),
                "2".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(c.hub.listen, "127.0.0.1:1");
        assert_eq!(c.hub.session_hours, 2);
    }
}
