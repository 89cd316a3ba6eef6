//! Loading the configured known-bad lists into a matcher, and reloading them when their files
//! change — off the request path, swapped in atomically.
//!
//! A list that cannot be read keeps its last good version (or is left out at start-up); the
//! failure is logged and counted in `watchhouse_intel_load_failures_total`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use watchhouse_intel::{
    is_non_internet, parse_netset, Cidr, ListInfo, Matcher, MatcherBuilder, MAX_LISTS,
};

use crate::{AppState, FeedConfig};

/// Biggest list file read, in bytes (a hostile or broken file cannot exhaust memory).
pub const MAX_FEED_BYTES: u64 = 256 * 1024 * 1024;

/// One list as last loaded.
#[derive(Debug, Clone)]
pub struct LoadedFeed {
    /// Its configuration.
    pub config: FeedConfig,
    /// Modification time of the file when read.
    pub modified: Option<SystemTime>,
    /// Its entries.
    pub entries: Vec<Cidr>,
}

fn read_feed(cfg: &FeedConfig) -> Result<LoadedFeed, String> {
    let path: &Path = &cfg.path;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FEED_BYTES {
        return Err(format!(
            "{} is {} bytes, more than the {} byte limit",
            path.display(),
            meta.len(),
            MAX_FEED_BYTES
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let (entries, report) = parse_netset(&text);
    if report.skipped > 0 {
        tracing::warn!(
            feed = %cfg.name,
            skipped = report.skipped,
            samples = ?report.samples,
            "skipped malformed entries"
        );
    }
    tracing::info!(feed = %cfg.name, entries = entries.len(), "loaded intelligence list");
    Ok(LoadedFeed {
        config: cfg.clone(),
        modified: meta.modified().ok(),
        entries,
    })
}

/// What the hub looks addresses up in, and what it pushes to collectors.
pub struct Intel {
    /// Lookups for detection.
    pub matcher: Matcher,
    /// The outbound watchlist collectors use to report devices contacting listed destinations.
    pub watchlist: Watchlist,
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

/// Builds the matcher and the watchlist from loaded lists.
pub fn build(feeds: &[LoadedFeed]) -> Intel {
    Intel {
        matcher: build_matcher(feeds),
        watchlist: build_watchlist(feeds),
    }
}

/// The watchlist: entries of every list, deduplicated, without private and special ranges
/// (some lists include bogons, which are never an outbound destination on the internet).
pub fn build_watchlist(feeds: &[LoadedFeed]) -> Watchlist {
    use std::io::Write;
    let set: BTreeSet<Cidr> = feeds
        .iter()
        .flat_map(|f| f.entries.iter().copied())
        .filter(|c| !is_non_internet(c.addr()))
        .collect();
    let mut text = String::with_capacity(set.len() * 16);
    for c in &set {
        text.push_str(&c.to_string());
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
        entries: set.len(),
    }
}

/// Builds a matcher from loaded lists.
pub fn build_matcher(feeds: &[LoadedFeed]) -> Matcher {
    let mut b = MatcherBuilder::new();
    for f in feeds.iter().take(MAX_LISTS) {
        b.add_list(
            ListInfo {
                name: f.config.name.clone(),
                category: f.config.category.clone(),
            },
            f.entries.iter().copied(),
        );
    }
    b.build()
}

/// Loads every configured list; lists that fail are logged and left out.
pub fn load_all(configs: &[FeedConfig]) -> (Vec<LoadedFeed>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    if configs.len() > MAX_LISTS {
        errors.push(format!("only the first {MAX_LISTS} feeds are used"));
    }
    for c in configs.iter().take(MAX_LISTS) {
        match read_feed(c) {
            Ok(f) => ok.push(f),
            Err(e) => {
                tracing::error!(feed = %c.name, error = %e, "cannot load intelligence list");
                errors.push(e);
            }
        }
    }
    (ok, errors)
}

/// Watches the list files and swaps in a new matcher when any changes. Runs until dropped.
pub async fn watch(state: AppState, mut feeds: Vec<LoadedFeed>) {
    let every = Duration::from_secs(state.config.feed_check_secs.max(1));
    let configs = state.config.feeds.clone();
    loop {
        tokio::time::sleep(every).await;
        let mut changed = false;
        for c in configs.iter().take(MAX_LISTS) {
            let modified = std::fs::metadata(&c.path).and_then(|m| m.modified()).ok();
            let current = feeds.iter().position(|f| f.config.name == c.name);
            let stale = match current {
                Some(i) => modified.is_some() && feeds[i].modified != modified,
                None => modified.is_some(),
            };
            if !stale {
                continue;
            }
            let cfg = c.clone();
            match tokio::task::spawn_blocking(move || read_feed(&cfg)).await {
                Ok(Ok(f)) => {
                    match current {
                        Some(i) => feeds[i] = f,
                        None => feeds.push(f),
                    }
                    changed = true;
                }
                Ok(Err(e)) => {
                    state
                        .metrics
                        .intel_load_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(feed = %c.name, error = %e, "reload failed; keeping the last good version");
                }
                Err(e) => tracing::error!(error = %e, "feed reload task failed"),
            }
        }
        if changed {
            let snapshot = feeds.clone();
            if let Ok(intel) = tokio::task::spawn_blocking(move || build(&snapshot)).await {
                tracing::info!(entries = intel.matcher.len(), watchlist = %intel.watchlist.version, "intelligence updated");
                state.set_intel(intel);
            }
        }
    }
}
