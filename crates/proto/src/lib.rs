//! The collector ↔ hub wire format, version 1 (JSON over HTTP).
//!
//! ```text
//! POST /api/v1/enrol    EnrolRequest            -> EnrolResponse
//! POST /api/v1/ingest   Batch (Bearer <cred>,   -> IngestResponse
//!                       Idempotency-Key: <batch_id>)
//! errors                ApiError { code, message }
//! ```
//!
//! **Invariant: the wire format is versioned and old versions stay readable.** Every change adds
//! a new version; `tests/fixtures/` keeps a batch of each version that the tests read back.
//! A retried batch carries the same `batch_id`, and the hub stores a `batch_id` once per collector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use watchhouse_event::Event;

pub mod wire;

/// The wire version this build writes.
pub const WIRE_VERSION: u32 = 1;

/// Header carrying the batch id, so a retry is recognised even before the body is read.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Largest batch body the hub accepts, in bytes.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 20_000;

/// A collector's one-time enrolment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnrolRequest {
    /// The one-time token an administrator or member admin created.
    pub token: String,
    /// A name for this collector, e.g. the site or firewall it reads.
    pub name: String,
    /// The collector's software version.
    pub version: String,
}

/// What enrolment yields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnrolResponse {
    /// The collector's id.
    pub collector_id: String,
    /// The member it belongs to.
    pub member_id: String,
    /// The per-collector secret for `Authorization: Bearer`. Shown once; the hub keeps a hash.
    pub credential: String,
    /// Settings pushed from the hub.
    pub settings: CollectorSettings,
}

/// Settings the hub pushes to a collector (at enrolment and in every ingest response).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CollectorSettings {
    /// The member's own networks (CIDRs) in addition to the private ranges.
    #[serde(default)]
    pub member_networks: Vec<String>,
    /// Whether the member opted in to sending outbound traffic.
    #[serde(default)]
    pub send_outbound: bool,
    /// How often to ship, in milliseconds.
    #[serde(default)]
    pub upload_interval_ms: u64,
    /// Version of the outbound watchlist (`GET /api/v1/collector/watchlist`); fetch it when this
    /// changes. Outbound traffic to a listed destination is sent even without the opt-in.
    #[serde(default)]
    pub watchlist_version: String,
}

/// A batch of events from one collector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Batch {
    /// Wire version, [`WIRE_VERSION`].
    pub version: u32,
    /// Unique per batch; the same on every retry.
    pub batch_id: Uuid,
    /// Collector software version.
    pub collector_version: String,
    /// When the collector first sealed the batch.
    pub sealed_at_ms: i64,
    /// The events.
    pub events: Vec<Event>,
    /// Collector health at sealing time.
    #[serde(default)]
    pub stats: Option<CollectorStats>,
}

impl Batch {
    /// The batch's wire JSON: the same bytes as `serde_json::to_vec(self)`, with the events
    /// written by [`wire::write_event`] (most of a batch's bytes, and most of a collector's
    /// encoding time, are its events' original lines).
    pub fn to_wire_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_wire_json(&mut out);
        out
    }

    /// [`Batch::to_wire_json`], appended to `out` (for a caller that wraps the batch in more
    /// JSON without copying it again).
    pub fn write_wire_json(&self, out: &mut Vec<u8>) {
        out.reserve(256 + self.events.iter().map(|e| 192 + e.raw.len()).sum::<usize>());
        out.extend_from_slice(b"{\"version\":");
        wire::write_int(out, self.version);
        out.extend_from_slice(b",\"batch_id\":\"");
        out.extend_from_slice(
            self.batch_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"collector_version\":");
        wire::write_str(out, &self.collector_version);
        out.extend_from_slice(b",\"sealed_at_ms\":");
        wire::write_int(out, self.sealed_at_ms);
        out.extend_from_slice(b",\"events\":[");
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            wire::write_event(out, e);
        }
        out.extend_from_slice(b"],\"stats\":");
        // Small beside the events: serde_json writes it. (It cannot fail for these types:
        // string keys, no floats; were it to, the batch would still be valid JSON.)
        match serde_json::to_vec(&self.stats) {
            Ok(j) => out.extend_from_slice(&j),
            Err(_) => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
}

/// Cumulative counters since the collector process started, plus recent samples of bad input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CollectorStats {
    /// Lines (messages) received from all sources.
    pub lines_received: u64,
    /// Lines parsed, per format.
    pub parsed: BTreeMap<String, u64>,
    /// Lines not parsed, per `format:reason` (`unknown:unknown_format`, `netfilter:bad_src`, …).
    pub unparsed: BTreeMap<String, u64>,
    /// Events kept on the member's network by the privacy filter, per reason.
    pub withheld: BTreeMap<String, u64>,
    /// Recent unparsed lines for diagnosis (bounded).
    pub samples: Vec<UnparsedSample>,
    /// Batches waiting to be shipped.
    pub spool_batches: u64,
    /// Most recent error, if any.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One unparsed line kept for diagnosis.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnparsedSample {
    /// Format it was attributed to (`unknown` if none).
    pub format: String,
    /// Reason code.
    pub reason: String,
    /// The line, truncated to [`MAX_SAMPLE_BYTES`] and lossily decoded.
    pub line: String,
    /// When it arrived.
    pub at_ms: i64,
}

/// Longest sample line kept.
pub const MAX_SAMPLE_BYTES: usize = 512;

/// A collector's periodic sign of life, sent when it has had nothing to ship for a while.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Heartbeat {
    /// Collector software version.
    pub collector_version: String,
    /// Health now.
    pub stats: CollectorStats,
}

/// Hub's answer to an ingest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestResponse {
    /// The batch acknowledged.
    pub batch_id: Uuid,
    /// Events stored from this batch (on a duplicate: the count stored the first time).
    pub accepted: u64,
    /// True when this batch had already been stored; nothing was stored again.
    pub duplicate: bool,
    /// Events in the batch the hub refused (out-of-range time, oversized fields, internal
    /// traffic); counted in the hub's metrics, never stored.
    #[serde(default)]
    pub rejected: u64,
    /// Current settings for the collector.
    pub settings: CollectorSettings,
}

/// Every API error body: a stable machine-readable code and a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    /// Stable snake_case code.
    pub code: String,
    /// What went wrong and what to do next.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_fixture_reads_back() {
        let text = include_str!("../tests/fixtures/v1-batch.json");
        let b: Batch = serde_json::from_str(text).unwrap();
        assert_eq!(b.version, 1);
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events[0].dst_port, Some(22));
        assert_eq!(b.events[1].count, 1, "count defaults to 1");
        let stats = b.stats.unwrap();
        assert_eq!(stats.unparsed["unknown:unknown_format"], 1);
    }

    #[test]
    fn the_v1_fixture_is_written_back_as_serde_json_writes_it() {
        let b: Batch =
            serde_json::from_str(include_str!("../tests/fixtures/v1-batch.json")).unwrap();
        assert_eq!(b.to_wire_json(), serde_json::to_vec(&b).unwrap());
    }

    use proptest::prelude::*;

    proptest! {
        /// The envelope around the events (their own writer is property-tested in
        /// `wire.rs`): any collector version text, with or without stats, any number
        /// of events, is written byte for byte as serde_json writes it.
        #[test]
        fn wire_json_is_what_serde_json_writes(
            version in any::<u32>(),
            id in any::<u128>(),
            collector_version in any::<String>(),
            sealed_at_ms in any::<i64>(),
            raws in proptest::collection::vec(any::<String>(), 0..4),
            stats in proptest::option::of((any::<u64>(), any::<String>(), any::<Option<String>>())),
        ) {
            let base: Batch =
                serde_json::from_str(include_str!("../tests/fixtures/v1-batch.json")).unwrap();
            let template = base.events[0].clone();
            let b = Batch {
                version,
                batch_id: Uuid::from_u128(id),
                collector_version,
                sealed_at_ms,
                events: raws
                    .into_iter()
                    .map(|raw| Event { raw, ..template.clone() })
                    .collect(),
                stats: stats.map(|(n, k, last_error)| CollectorStats {
                    lines_received: n,
                    parsed: [(k.clone(), n)].into(),
                    unparsed: [(k, 1)].into(),
                    last_error,
                    ..base.stats.clone().unwrap_or_default()
                }),
            };
            let ours = b.to_wire_json();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&b).unwrap());
        }
    }
}
