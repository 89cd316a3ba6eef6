//! Intelligence in the hub: feeds fetched on a schedule ([`feeds`]), analysts' and partners'
//! indicators from the store, all built into one [`Intel`] off the request path and swapped in
//! whole, so a lookup never sees half an update.
//!
//! ```text
//! feeds (http/file, TAXII, MISP) ─┐
//! analyst indicators (store) ─────┼─▶ build (blocking thread) ─▶ Arc<Intel> swap ─▶ detect, watchlist,
//! partner TAXII objects (store) ──┘                                                  blocklists, TAXII
//! ```
//!
//! **Invariant: nothing TLP:RED leaves.** [`Intel::blocklist`], [`Intel::watchlist`] and
//! [`Intel::shareable`] are the only sources of outgoing intelligence, and [`build`] never puts a
//! TLP:RED entry in them (nor AMBER+STRICT in what goes to members: blocklists and the
//! watchlist); the TAXII and export code filters again by the recipient's ceiling.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use watchhouse_intel::{
    is_non_internet, Cidr, FeedInfo, Indicator, IndicatorValue, Matcher, MatcherBuilder, Tlp,
};

pub mod feeds;

pub use feeds::{FeedState, FeedStatus, FeedView};

/// Biggest feed accepted by default, in bytes (each feed can set its own `max_bytes`).
pub const MAX_FEED_BYTES: u64 = 256 * 1024 * 1024;

/// The name analyst indicators appear under.
pub const ANALYST_FEED: &str = "analysts";
/// The name partners' TAXII submissions appear under.
pub const PARTNER_FEED: &str = "partners";

/// One source of indicators going into a build.
#[derive(Debug, Clone)]
pub struct SourceInput {
    /// Feed name.
    pub name: String,
    /// Who publishes it.
    pub provenance: String,
    /// Defaults for its entries.
    pub category: String,
    /// Default confidence.
    pub confidence: u8,
    /// Default TLP.
    pub tlp: Tlp,
    /// May be shared onwards.
    pub share: bool,
    /// Goes into member blocklists.
    pub blocklist: bool,
    /// When the source last changed (used as the STIX `modified` of its entries).
    pub changed_ms: i64,
    /// The entries.
    pub indicators: Arc<Vec<SourcedIndicator>>,
}

/// An indicator with the times the hub knows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedIndicator {
    /// The indicator.
    pub indicator: Indicator,
    /// Created (first seen by the hub), ms.
    pub created_ms: i64,
    /// Last changed, ms.
    pub modified_ms: i64,
    /// Withdrawn (kept so TAXII consumers learn of the revocation).
    pub revoked: bool,
}

impl SourcedIndicator {
    /// From a feed entry.
    pub fn from_feed(i: Indicator, changed_ms: i64) -> SourcedIndicator {
        SourcedIndicator {
            created_ms: i.first_seen_ms.unwrap_or(changed_ms),
            indicator: i,
            modified_ms: changed_ms,
            revoked: false,
        }
    }
}

/// An entry of the members' blocklists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// The address or block.
    pub cidr: Cidr,
    /// Feeds that list it.
    pub sources: Vec<String>,
    /// Most restrictive TLP among them.
    pub tlp: Tlp,
    /// Earliest expiry among them.
    pub valid_until_ms: Option<i64>,
}

/// An indicator Watchhouse may share onwards, with its effective metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareIndicator {
    /// Feed it came from.
    pub feed: String,
    /// Publisher of that feed.
    pub provenance: String,
    /// The value.
    pub value: IndicatorValue,
    /// Category.
    pub category: String,
    /// 0–100.
    pub confidence: u8,
    /// TLP (never `Red` here).
    pub tlp: Tlp,
    /// Valid from, ms.
    pub created_ms: i64,
    /// Last change, ms.
    pub modified_ms: i64,
    /// Expiry.
    pub valid_until_ms: Option<i64>,
    /// Free text.
    pub description: Option<String>,
    /// Withdrawn.
    pub revoked: bool,
}

/// Everything the hub knows, built at once.
pub struct Intel {
    /// Lookups for detection.
    pub matcher: Matcher,
    /// The outbound watchlist collectors use to report devices contacting listed destinations.
    pub watchlist: Watchlist,
    /// Addresses for members' blocklists (internet addresses only, TLP at most AMBER).
    pub blocklist: Vec<BlockEntry>,
    /// Indicators that may be shared onwards (TLP at most AMBER+STRICT; filtered again per
    /// recipient), ordered by `modified_ms`.
    pub shareable: Vec<ShareIndicator>,
    /// Earliest expiry among the entries in use: the intelligence is rebuilt then.
    pub next_expiry_ms: Option<i64>,
    /// When it was built.
    pub built_ms: i64,
}

impl Intel {
    /// Nothing known.
    pub fn empty() -> Intel {
        build(&[], 0)
    }
}

/// Every listed internet address and block, as a gzipped text list with a version.
pub struct Watchlist {
    /// First 16 hex digits of the SHA-256 of the list; changes whenever the list does.
    pub version: String,
    /// The list (one CIDR per line), gzip-compressed.
    pub gz: Vec<u8>,
    /// Entries in the list.
    pub entries: usize,
}

/// Builds everything from the sources at `now_ms`: expired and revoked entries are left out of
/// the matcher, the watchlist and the blocklist.
pub fn build(sources: &[SourceInput], now_ms: i64) -> Intel {
    let mut b = MatcherBuilder::new();
    let mut watch: BTreeSet<Cidr> = BTreeSet::new();
    let mut watch_names: BTreeSet<String> = BTreeSet::new();
    let mut block: BTreeMap<Cidr, BlockEntry> = BTreeMap::new();
    let mut shareable = Vec::new();
    let mut next_expiry: Option<i64> = None;
    for s in sources {
        let Some(feed) = b.add_feed(FeedInfo {
            name: s.name.clone(),
            category: s.category.clone(),
            confidence: s.confidence,
            tlp: s.tlp,
        }) else {
            tracing::error!(feed = %s.name, "too many feeds; left out");
            continue;
        };
        for si in s.indicators.iter() {
            let i = &si.indicator;
            let tlp = i.tlp.unwrap_or(s.tlp);
            let live = !si.revoked && !i.expired(now_ms);
            if live {
                if let Some(t) = i.valid_until_ms {
                    next_expiry = Some(next_expiry.map_or(t, |n| n.min(t)));
                }
                b.add(feed, i);
                if let IndicatorValue::Domain(d) | IndicatorValue::Url(d) = &i.value {
                    if tlp <= Tlp::Amber {
                        watch_names.insert(d.clone());
                    }
                }
                if let IndicatorValue::Ip(c) = i.value {
                    if !is_non_internet(c.addr()) {
                        // The watchlist sits on members' machines: what may not go to members
                        // (AMBER+STRICT, RED) stays out of it.
                        if tlp <= Tlp::Amber {
                            watch.insert(c);
                        }
                        if s.blocklist && tlp <= Tlp::Amber {
                            let e = block.entry(c).or_insert_with(|| BlockEntry {
                                cidr: c,
                                sources: Vec::new(),
                                tlp,
                                valid_until_ms: i.valid_until_ms,
                            });
                            if !e.sources.contains(&s.name) {
                                e.sources.push(s.name.clone());
                            }
                            e.tlp = e.tlp.max(tlp);
                            e.valid_until_ms = match (e.valid_until_ms, i.valid_until_ms) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                        }
                    }
                }
            }
            if s.share && tlp < Tlp::Red {
                shareable.push(ShareIndicator {
                    feed: s.name.clone(),
                    provenance: s.provenance.clone(),
                    value: i.value.clone(),
                    category: i.category.clone().unwrap_or_else(|| s.category.clone()),
                    confidence: i.confidence.unwrap_or(s.confidence),
                    tlp,
                    created_ms: si.created_ms,
                    modified_ms: si.modified_ms,
                    valid_until_ms: i.valid_until_ms,
                    description: i.description.clone(),
                    revoked: si.revoked,
                });
            }
        }
    }
    shareable.sort_by(|a, b| {
        a.modified_ms
            .cmp(&b.modified_ms)
            .then_with(|| a.value.cmp(&b.value))
    });
    Intel {
        matcher: b.build(),
        watchlist: build_watchlist(&watch, &watch_names),
        blocklist: block.into_values().collect(),
        shareable,
        next_expiry_ms: next_expiry,
        built_ms: now_ms,
    }
}

fn build_watchlist(set: &BTreeSet<Cidr>, names: &BTreeSet<String>) -> Watchlist {
    use std::io::Write;
    let mut text = String::with_capacity(set.len() * 16);
    for c in set {
        text.push_str(&c.to_string());
        text.push('\n');
    }
    // Domains and URLs too: a device asking for a listed name is reported even when the
    // member sends no other outbound traffic.
    for n in names {
        text.push_str(n);
        text.push('\n');
    }
    let version = hex::encode(&Sha256::digest(text.as_bytes())[..8]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let gz = enc
        .write_all(text.as_bytes())
        .and_then(|_| enc.finish())
        .unwrap_or_default();
    Watchlist {
        version,
        gz,
        entries: set.len() + names.len(),
    }
}

/// Analyst indicators as a source (shared and blocked within their TLP).
pub fn analyst_source(list: &[watchhouse_store::StoredIndicator]) -> SourceInput {
    let changed_ms = list.iter().map(|i| i.modified_ms).max().unwrap_or(0);
    let v = list
        .iter()
        .map(|s| SourcedIndicator {
            indicator: Indicator {
                value: s.value.clone(),
                category: Some(s.category.clone()),
                confidence: Some(s.confidence),
                tlp: Some(s.tlp),
                first_seen_ms: Some(s.created_ms),
                valid_until_ms: s.valid_until_ms,
                description: Some(s.description.clone()).filter(|d| !d.is_empty()),
                source_id: Some(format!("analyst:{}", s.id)),
            },
            created_ms: s.created_ms,
            modified_ms: s.modified_ms,
            revoked: s.revoked,
        })
        .collect();
    SourceInput {
        name: ANALYST_FEED.into(),
        provenance: "Watchhouse analysts".into(),
        category: "attacks".into(),
        confidence: 70,
        tlp: Tlp::Amber,
        share: true,
        blocklist: true,
        changed_ms,
        indicators: Arc::new(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(
        name: &str,
        share: bool,
        blocklist: bool,
        entries: &[(&str, Option<Tlp>)],
    ) -> SourceInput {
        SourceInput {
            name: name.into(),
            provenance: "test".into(),
            category: "attacks".into(),
            confidence: 50,
            tlp: Tlp::Green,
            share,
            blocklist,
            changed_ms: 1,
            indicators: Arc::new(
                entries
                    .iter()
                    .map(|(v, t)| {
                        let mut i = Indicator::new(IndicatorValue::parse(v).unwrap());
                        i.tlp = *t;
                        SourcedIndicator::from_feed(i, 1)
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn red_never_reaches_blocklists_or_sharing_but_is_matched() {
        let s = src(
            "x",
            true,
            true,
            &[
                ("198.51.100.1", Some(Tlp::Red)),
                ("198.51.100.2", Some(Tlp::AmberStrict)),
                ("198.51.100.3", None),
                ("10.0.0.0/8", None),
            ],
        );
        let i = build(&[s], 10);
        assert!(i.matcher.contains("198.51.100.1".parse().unwrap()));
        let blocked: Vec<String> = i.blocklist.iter().map(|b| b.cidr.to_string()).collect();
        assert_eq!(
            blocked,
            vec!["198.51.100.3"],
            "no RED, no AMBER+STRICT, no private ranges"
        );
        let shared: Vec<String> = i.shareable.iter().map(|s| s.value.to_string()).collect();
        assert!(!shared.contains(&"198.51.100.1".to_string()));
        assert!(shared.contains(&"198.51.100.2".to_string()));
        assert_eq!(
            i.watchlist.entries, 1,
            "the watchlist goes to members: no RED, no AMBER+STRICT"
        );
    }

    #[test]
    fn expired_entries_are_left_out_and_the_next_expiry_is_known() {
        let mut s = src(
            "x",
            false,
            true,
            &[("198.51.100.1", None), ("198.51.100.2", None)],
        );
        let v = Arc::make_mut(&mut s.indicators);
        v[0].indicator.valid_until_ms = Some(5);
        v[1].indicator.valid_until_ms = Some(50);
        let i = build(std::slice::from_ref(&s), 10);
        assert!(!i.matcher.contains("198.51.100.1".parse().unwrap()));
        assert!(i.matcher.contains("198.51.100.2".parse().unwrap()));
        assert_eq!(i.next_expiry_ms, Some(50));
        assert_eq!(i.blocklist.len(), 1);
    }
}
