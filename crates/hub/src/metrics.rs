//! Prometheus metrics, rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use watchhouse_detect::AlertKind;

/// The hub's counters. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events stored.
    pub events_ingested: AtomicU64,
    /// Batches stored / recognised as duplicates / refused.
    batches: Mutex<BTreeMap<&'static str, u64>>,
    /// Events refused at ingest, per reason.
    events_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Alerts created, per kind.
    alerts: Mutex<BTreeMap<&'static str, u64>>,
    /// Failed sign-ins.
    pub login_failures: AtomicU64,
    /// Sign-ins refused by the rate limit.
    pub login_throttled: AtomicU64,
    /// Ingest requests refused for bad credentials.
    pub ingest_unauthorised: AtomicU64,
    /// Entries in the loaded intelligence.
    pub intel_entries: AtomicU64,
    /// Feed loads that failed (the previous version was kept).
    pub intel_load_failures: AtomicU64,
    /// Notifications sent, per channel (`email`, `webhook`, `digest`).
    notifications: Mutex<BTreeMap<&'static str, u64>>,
    /// Notifications that failed to send.
    pub notifications_failed: AtomicU64,
    /// Urgent notifications held back by the per-recipient rate limit (they go in the digest).
    pub notifications_held: AtomicU64,
    /// Queued batches a worker received again (the previous worker died or failed).
    pub queue_redelivered: AtomicU64,
    /// Queued batches a worker could not store this time (given back to the queue).
    pub queue_retried: AtomicU64,
    /// Queued messages that could not be read at all (kept in the file store under
    /// `dead-letters/`, acknowledged so they do not block the queue).
    pub queue_dead_letters: AtomicU64,
}

fn bump(m: &Mutex<BTreeMap<&'static str, u64>>, k: &'static str, n: u64) {
    *m.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(k)
        .or_default() += n;
}

impl Metrics {
    /// New, with every alert kind present at zero so dashboards see the series.
    pub fn new() -> Metrics {
        let m = Metrics::default();
        for k in AlertKind::ALL {
            bump(&m.alerts, k.as_str(), 0);
        }
        for r in ["stored", "duplicate", "rejected", "queued"] {
            bump(&m.batches, r, 0);
        }
        for c in ["email", "webhook", "digest"] {
            bump(&m.notifications, c, 0);
        }
        m
    }

    /// Counts a batch outcome.
    pub fn batch(&self, result: &'static str) {
        bump(&self.batches, result, 1);
    }

    /// Counts refused events.
    pub fn rejected(&self, reason: &'static str, n: u64) {
        bump(&self.events_rejected, reason, n);
    }

    /// Counts a sent notification.
    pub fn notified(&self, channel: &'static str) {
        bump(&self.notifications, channel, 1);
    }

    /// Counts a created alert.
    pub fn alert(&self, kind: AlertKind) {
        bump(&self.alerts, kind.as_str(), 1);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let labelled = |s: &mut String,
                        name: &str,
                        help: &str,
                        label: &str,
                        m: &Mutex<BTreeMap<&'static str, u64>>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for (k, v) in m.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(s, "{name}{{{label}=\"{k}\"}} {v}");
            }
        };
        counter(
            &mut s,
            "watchhouse_events_ingested_total",
            "Firewall events stored by the hub.",
            self.events_ingested.load(Ordering::Relaxed),
        );
        labelled(
            &mut s,
            "watchhouse_alerts_total",
            "Alerts created, by detection.",
            "kind",
            &self.alerts,
        );
        labelled(
            &mut s,
            "watchhouse_ingest_batches_total",
            "Ingest batches by result.",
            "result",
            &self.batches,
        );
        labelled(
            &mut s,
            "watchhouse_ingest_events_rejected_total",
            "Events refused at ingest, by reason.",
            "reason",
            &self.events_rejected,
        );
        counter(
            &mut s,
            "watchhouse_queue_redelivered_total",
            "Queued batches a worker received again after another worker died or failed.",
            self.queue_redelivered.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "watchhouse_queue_retried_total",
            "Queued batches a worker could not store this time and gave back to the queue.",
            self.queue_retried.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "watchhouse_queue_dead_letters_total",
            "Queued messages that could not be read; kept in the file store under dead-letters/.",
            self.queue_dead_letters.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "watchhouse_ingest_unauthorised_total",
            "Ingest or enrolment requests refused for a bad credential or token.",
            self.ingest_unauthorised.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "watchhouse_login_failures_total",
            "Failed sign-ins.",
            self.login_failures.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "watchhouse_login_throttled_total",
            "Sign-ins refused by the rate limit.",
            self.login_throttled.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP watchhouse_intel_entries Addresses and blocks in the loaded intelligence.\n# TYPE watchhouse_intel_entries gauge\nwatchhouse_intel_entries {}",
            self.intel_entries.load(Ordering::Relaxed)
        );
        counter(
            &mut s,
            "watchhouse_intel_load_failures_total",
            "Feed loads that failed; the last good version stays in use.",
            self.intel_load_failures.load(Ordering::Relaxed),
        );
        labelled(
            &mut s,
            "watchhouse_notifications_total",
            "Notifications sent, by channel.",
            "channel",
            &self.notifications,
        );
        counter(
            &mut s,
            "watchhouse_notifications_failed_total",
            "Notifications that could not be sent.",
            self.notifications_failed.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "watchhouse_notifications_held_total",
            "Urgent notifications held back by the rate limit (they go in the daily digest).",
            self.notifications_held.load(Ordering::Relaxed),
        );
        s
    }
}
