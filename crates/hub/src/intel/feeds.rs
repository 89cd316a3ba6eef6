//! Fetching feeds: local files, HTTP(S) with conditional requests, TAXII 2.1 collections polled
//! with `added_after`, MISP feeds (manifest and changed events). Each feed keeps its last good
//! version, on disk too, so a restart or a broken update never leaves the hub without it.
//!
//! **Invariant: a bad update is never swapped in.** A feed that cannot be fetched or read, or
//! that shrinks by more than its `max_shrink_pct`, keeps its last good version; the feed's
//! status says why, the failure is logged at error level and counted in
//! `watchhouse_intel_feed_problems_total`, and administrators see it on the intelligence page.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use watchhouse_intel::formats::{self, FeedFormat, FeedHeader, Report};
use watchhouse_intel::Indicator;

use super::{SourceInput, SourcedIndicator};
use crate::{now_ms, AppState, FeedConfig};

/// How a feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedStatus {
    /// Not fetched yet.
    Pending,
    /// The last fetch succeeded (or had nothing new).
    Ok,
    /// The last update was refused (shrank too much, or had no usable entries); the previous
    /// version is in use.
    Held,
    /// The last fetch failed; the previous version (if any) is in use.
    Failed,
    /// Not fetched successfully for longer than its expiry: its entries are no longer used.
    Expired,
}

/// What administrators see of a feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedView {
    /// Name.
    pub name: String,
    /// Where it comes from (credentials never shown).
    pub url: String,
    /// Format in use.
    pub format: String,
    /// Publisher.
    pub provenance: String,
    /// Default category.
    pub category: String,
    /// Default confidence.
    pub confidence: u8,
    /// Default TLP.
    pub tlp: watchhouse_intel::Tlp,
    /// Shared onwards.
    pub share: bool,
    /// In member blocklists.
    pub blocklist: bool,
    /// Status.
    pub status: FeedStatus,
    /// Why, in words.
    pub message: String,
    /// Entries in use.
    pub entries: usize,
    /// Entries skipped in the last version read, with samples.
    pub skipped: usize,
    /// Samples of skipped entries.
    pub samples: Vec<String>,
    /// Last fetch attempt, ms.
    pub last_attempt_ms: Option<i64>,
    /// Last successful fetch, ms.
    pub last_success_ms: Option<i64>,
    /// Last time its content changed, ms.
    pub last_change_ms: Option<i64>,
    /// Added in the web UI or API (removable there), rather than in the configuration file.
    pub from_ui: bool,
}

/// Saved beside the cached body so a restart resumes with conditional requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CacheMeta {
    etag: Option<String>,
    last_modified: Option<String>,
    last_success_ms: Option<i64>,
    last_change_ms: Option<i64>,
    taxii_after: Option<String>,
    /// MISP: event uuid → timestamp of the version held.
    misp_events: BTreeMap<String, i64>,
}

/// One feed's state.
pub struct FeedState {
    /// Configuration.
    pub config: FeedConfig,
    format: Option<FeedFormat>,
    header: FeedHeader,
    /// The entries of the last good version.
    pub indicators: Arc<Vec<SourcedIndicator>>,
    /// TAXII and MISP accumulate: key → entry.
    accum: BTreeMap<String, SourcedIndicator>,
    /// MISP: event uuid → (timestamp, keys of its entries).
    misp_keys: BTreeMap<String, Vec<String>>,
    meta: CacheMeta,
    file_mtime: Option<SystemTime>,
    last_attempt_ms: Option<i64>,
    status: FeedStatus,
    message: String,
    report: Report,
    files: watchhouse_files::Files,
    /// Added in the UI or API.
    pub from_ui: bool,
}

/// A file-store-safe name for a feed: lower-case letters, digits, `-` and `_`, plus a short
/// hash of the exact name so that `Level1` and `level1` never share a copy.
fn safe_name(s: &str) -> String {
    use sha2::Digest;
    let base: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{base}-{}",
        hex::encode(&sha2::Sha256::digest(s.as_bytes())[..4])
    )
}

/// Removes credentials from a URL for display.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match auth.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// Checks feed settings: unique names, known formats, usable URLs.
pub fn validate(configs: &[FeedConfig]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for c in configs {
        if c.name.is_empty() || c.name.len() > 64 {
            return Err(format!("feed name `{}` must be 1–64 characters", c.name));
        }
        if !names.insert(c.name.as_str()) {
            return Err(format!(
                "two feeds are called `{}`; names must be unique",
                c.name
            ));
        }
        if c.name == super::ANALYST_FEED || c.name == super::PARTNER_FEED {
            return Err(format!("the feed name `{}` is reserved", c.name));
        }
        if c.format != "auto" && FeedFormat::from_name(&c.format).is_none() {
            return Err(format!(
                "feed `{}`: unknown format `{}`; use auto or one of {}",
                c.name,
                c.format,
                FeedFormat::ALL
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some((scheme, _)) = c.url.split_once("://") {
            if !matches!(scheme, "http" | "https" | "file") {
                return Err(format!(
                    "feed `{}`: URL scheme `{scheme}` is not supported; use https://, http:// or file://",
                    c.name
                ));
            }
        }
        if c.confidence > 100 || c.max_shrink_pct > 100 {
            return Err(format!(
                "feed `{}`: confidence and max_shrink_pct are 0–100",
                c.name
            ));
        }
    }
    Ok(())
}

impl FeedState {
    /// A feed not yet read; `data_dir/feeds` holds its cache.
    pub fn new(config: FeedConfig, files: watchhouse_files::Files) -> FeedState {
        let format = FeedFormat::from_name(&config.format);
        FeedState {
            format,
            header: FeedHeader::default(),
            indicators: Arc::new(Vec::new()),
            accum: BTreeMap::new(),
            misp_keys: BTreeMap::new(),
            meta: CacheMeta::default(),
            file_mtime: None,
            last_attempt_ms: None,
            status: FeedStatus::Pending,
            message: "not fetched yet".into(),
            report: Report::default(),
            files,
            config,
            from_ui: false,
        }
    }

    fn accumulates(&self) -> bool {
        matches!(self.format, Some(FeedFormat::Taxii | FeedFormat::Misp))
    }

    /// The file-store key of a part of the saved copy (`feeds/<name>-<hash>.<part>`).
    fn cache_key(&self, part: &str) -> String {
        format!("feeds/{}.{part}", safe_name(&self.config.name))
    }

    /// The feed's URL as a base for relative requests (TAXII, MISP): with a trailing `/`.
    fn base_url(&self) -> String {
        if self.config.url.ends_with('/') {
            self.config.url.clone()
        } else {
            format!("{}/", self.config.url)
        }
    }

    fn is_file(&self) -> bool {
        self.config.url.starts_with("file://") || !self.config.url.contains("://")
    }

    fn file_path(&self) -> PathBuf {
        PathBuf::from(
            self.config
                .url
                .strip_prefix("file://")
                .unwrap_or(&self.config.url),
        )
    }

    /// Loads the last good version saved on disk, if any.
    pub async fn load_cache(&mut self) {
        let Ok(Some(meta)) = self.files.get(&self.cache_key("meta.json")).await else {
            return;
        };
        let Ok(meta) = serde_json::from_slice::<CacheMeta>(&meta) else {
            return;
        };
        let changed = meta.last_change_ms.unwrap_or(0);
        if self.accumulates() {
            if let Ok(Some(bytes)) = self.files.get(&self.cache_key("entries.json")).await {
                if let Ok(v) =
                    serde_json::from_slice::<Vec<(String, Indicator, i64, Vec<String>)>>(&bytes)
                {
                    for (key, i, seen, events) in v {
                        for e in events {
                            self.misp_keys.entry(e).or_default().push(key.clone());
                        }
                        let mut si = SourcedIndicator::from_feed(i, seen);
                        si.modified_ms = seen;
                        self.accum.insert(key, si);
                    }
                }
            }
            self.indicators = Arc::new(self.accum.values().cloned().collect());
        } else if let Ok(Some(bytes)) = self.files.get(&self.cache_key("body")).await {
            let format = self.format.unwrap_or_else(|| formats::sniff(&bytes));
            if let Ok((v, rep)) = formats::parse(format, &bytes) {
                self.format = Some(format);
                self.header = formats::firehol_header(&String::from_utf8_lossy(
                    &bytes[..bytes.len().min(16384)],
                ));
                self.report = rep;
                self.indicators = Arc::new(
                    v.into_iter()
                        .map(|i| SourcedIndicator::from_feed(i, changed))
                        .collect(),
                );
            }
        }
        self.meta = meta;
        self.status = FeedStatus::Ok;
        self.message = format!("{} entries from the saved copy", self.indicators.len());
    }

    async fn save_cache(&self, body: Option<&[u8]>) {
        let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(b) = body {
            parts.push((self.cache_key("body"), b.to_vec()));
        }
        if self.accumulates() {
            let mut events_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (ev, keys) in &self.misp_keys {
                for k in keys {
                    events_of.entry(k.as_str()).or_default().push(ev.clone());
                }
            }
            let v: Vec<(&String, &Indicator, i64, Vec<String>)> = self
                .accum
                .iter()
                .map(|(k, si)| {
                    (
                        k,
                        &si.indicator,
                        si.modified_ms,
                        events_of.remove(k.as_str()).unwrap_or_default(),
                    )
                })
                .collect();
            if let Ok(j) = serde_json::to_vec(&v) {
                parts.push((self.cache_key("entries.json"), j));
            }
        }
        // The metadata last: a copy is used only once its metadata is there.
        if let Ok(j) = serde_json::to_vec(&self.meta) {
            parts.push((self.cache_key("meta.json"), j));
        }
        for (key, bytes) in parts {
            if let Err(e) = self.files.put(&key, bytes).await {
                tracing::warn!(feed = %self.config.name, %key, error = %e, "cannot save the feed's copy");
            }
        }
    }

    /// Is a refresh due at `now_ms`? Local files are checked at every tick (a changed file is
    /// read at once); remote sources every `refresh_secs`.
    pub fn due(&self, now_ms: i64) -> bool {
        if self.is_file() {
            return true;
        }
        match self.last_attempt_ms {
            None => true,
            Some(t) => now_ms - t >= self.config.refresh_secs.max(1) as i64 * 1000,
        }
    }

    /// True when the feed has not been fetched successfully for longer than its expiry.
    pub fn expired(&self, now_ms: i64) -> bool {
        let days = self.config.expiry_days;
        days > 0
            && !self.accumulates()
            && self
                .meta
                .last_success_ms
                .is_some_and(|t| now_ms - t > days as i64 * 86_400_000)
    }

    /// The feed as an input to a build (no entries when expired).
    pub fn source(&self, now_ms: i64) -> SourceInput {
        let c = &self.config;
        let category = if !c.category.is_empty() {
            c.category.clone()
        } else {
            self.header
                .category
                .clone()
                .unwrap_or_else(|| "attacks".into())
        };
        let provenance = if !c.provenance.is_empty() {
            c.provenance.clone()
        } else {
            self.header
                .maintainer
                .clone()
                .unwrap_or_else(|| redact(&c.url))
        };
        SourceInput {
            name: c.name.clone(),
            provenance,
            category,
            confidence: c.confidence,
            tlp: c.tlp,
            share: c.share,
            blocklist: c.blocklist,
            changed_ms: self.meta.last_change_ms.unwrap_or(0),
            indicators: if self.expired(now_ms) {
                Arc::new(Vec::new())
            } else {
                self.indicators.clone()
            },
        }
    }

    /// What administrators see.
    pub fn view(&self, now_ms: i64) -> FeedView {
        let c = &self.config;
        let (status, message) = if self.expired(now_ms) {
            (
                FeedStatus::Expired,
                format!(
                    "not fetched successfully for more than {} days; its entries are no longer used. {}",
                    c.expiry_days, self.message
                ),
            )
        } else {
            (self.status, self.message.clone())
        };
        let src = self.source(now_ms);
        FeedView {
            name: c.name.clone(),
            url: redact(&c.url),
            format: self
                .format
                .map(|f| f.as_str().to_owned())
                .unwrap_or_else(|| c.format.clone()),
            provenance: src.provenance,
            category: src.category,
            confidence: c.confidence,
            tlp: c.tlp,
            share: c.share,
            blocklist: c.blocklist,
            status,
            message,
            entries: self.indicators.len(),
            skipped: self.report.skipped,
            samples: self.report.samples.clone(),
            last_attempt_ms: self.last_attempt_ms,
            last_success_ms: self.meta.last_success_ms,
            last_change_ms: self.meta.last_change_ms,
            from_ui: self.from_ui,
        }
    }

    fn problem(&mut self, status: FeedStatus, message: String, state: Option<&AppState>) {
        tracing::error!(feed = %self.config.name, %message, "intelligence feed problem; keeping the last good version");
        if let Some(s) = state {
            s.metrics
                .intel_load_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.status = status;
        self.message = message;
    }

    /// Fetches and reads the feed if it changed. Returns true when its entries changed.
    pub async fn refresh(&mut self, client: &reqwest::Client, state: Option<&AppState>) -> bool {
        let now = now_ms();
        self.last_attempt_ms = Some(now);
        let r = match self.format {
            Some(FeedFormat::Taxii) => self.refresh_taxii(client, now).await,
            Some(FeedFormat::Misp) => self.refresh_misp(client, now).await,
            _ => self.refresh_file(client, now).await,
        };
        match r {
            Ok(changed) => changed,
            Err((status, msg)) => {
                self.problem(status, msg, state);
                false
            }
        }
    }

    async fn refresh_file(
        &mut self,
        client: &reqwest::Client,
        now: i64,
    ) -> Result<bool, (FeedStatus, String)> {
        let fail = |m: String| (FeedStatus::Failed, m);
        let body = if self.is_file() {
            let path = self.file_path();
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
            if self.file_mtime == Some(mtime) && self.status != FeedStatus::Pending {
                // Checked and unchanged: still current, so it does not expire.
                if self.status == FeedStatus::Ok {
                    self.meta.last_success_ms = Some(now);
                }
                return Ok(false);
            }
            let max = self.config.max_bytes;
            let p = path.clone();
            let bytes = tokio::task::spawn_blocking(move || read_file_bounded(&p, max))
                .await
                .map_err(|e| fail(e.to_string()))?
                .map_err(fail)?;
            self.file_mtime = Some(mtime);
            bytes
        } else {
            match get(
                client,
                &self.config,
                &self.config.url,
                self.meta.etag.as_deref(),
                self.meta.last_modified.as_deref(),
            )
            .await
            .map_err(fail)?
            {
                Fetched::NotModified => {
                    self.meta.last_success_ms = Some(now);
                    self.status = FeedStatus::Ok;
                    self.message = format!("unchanged ({} entries)", self.indicators.len());
                    self.save_cache(None).await;
                    return Ok(false);
                }
                Fetched::Body {
                    bytes,
                    etag,
                    last_modified,
                } => {
                    self.meta.etag = etag;
                    self.meta.last_modified = last_modified;
                    bytes
                }
            }
        };
        let format = self.format.unwrap_or_else(|| formats::sniff(&body));
        let parsed = tokio::task::spawn_blocking(move || {
            let r = formats::parse(format, &body).map(|(v, rep)| {
                let h = formats::firehol_header(&String::from_utf8_lossy(
                    &body[..body.len().min(16384)],
                ));
                (v, rep, h)
            });
            (r, body)
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
        let (result, body) = parsed;
        let (v, rep, header) = result.map_err(|e| {
            (
                FeedStatus::Failed,
                format!("cannot read it as {format}: {e}"),
            )
        })?;
        let old = self.indicators.len();
        let new = v.len();
        if new == 0 && rep.skipped > 0 {
            return Err((
                FeedStatus::Held,
                format!(
                    "the new version has no usable entries ({} skipped, e.g. {}); keeping the previous version",
                    rep.skipped,
                    rep.samples.first().map(String::as_str).unwrap_or("")
                ),
            ));
        }
        let floor = old * (100 - self.config.max_shrink_pct as usize) / 100;
        if old > 0 && new < floor {
            return Err((
                FeedStatus::Held,
                format!(
                    "the new version shrank from {old} to {new} entries, more than the {}% allowed; keeping the previous version",
                    self.config.max_shrink_pct
                ),
            ));
        }
        self.format = Some(format);
        self.header = header;
        self.report = rep;
        self.indicators = Arc::new(
            v.into_iter()
                .map(|i| SourcedIndicator::from_feed(i, now))
                .collect(),
        );
        self.meta.last_success_ms = Some(now);
        self.meta.last_change_ms = Some(now);
        self.status = FeedStatus::Ok;
        self.message = format!("{new} entries ({} skipped)", self.report.skipped);
        tracing::info!(feed = %self.config.name, entries = new, skipped = self.report.skipped, "intelligence feed updated");
        self.save_cache(if self.is_file() { None } else { Some(&body) })
            .await;
        Ok(true)
    }

    async fn refresh_taxii(
        &mut self,
        client: &reqwest::Client,
        now: i64,
    ) -> Result<bool, (FeedStatus, String)> {
        let fail = |m: String| (FeedStatus::Failed, m);
        let base = self.base_url();
        let mut changed = false;
        let mut next: Option<String> = None;
        let mut report = Report::default();
        for _page in 0..1000 {
            let mut url = format!("{base}objects/?limit=1000");
            if let Some(a) = &self.meta.taxii_after {
                url.push_str(&format!("&added_after={}", urlencode(a)));
            }
            if let Some(n) = &next {
                url.push_str(&format!("&next={}", urlencode(n)));
            }
            let (bytes, headers) = get_taxii(client, &self.config, &url).await.map_err(fail)?;
            let page = formats::parse_taxii_envelope(&bytes, &mut report)
                .map_err(|e| fail(format!("{}: {e}", redact(&url))))?;
            for i in page.indicators {
                let key = i.source_id.clone().unwrap_or_else(|| i.value.to_string())
                    + "|"
                    + &i.value.to_string();
                let mut si = SourcedIndicator::from_feed(i, now);
                si.modified_ms = now;
                self.accum.insert(key, si);
                changed = true;
            }
            if let Some(last) = headers {
                self.meta.taxii_after = Some(last);
            }
            if !page.more {
                break;
            }
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        // Entries not renewed within the expiry go.
        if self.config.expiry_days > 0 {
            let cutoff = now - self.config.expiry_days as i64 * 86_400_000;
            let before = self.accum.len();
            self.accum
                .retain(|_, si| si.modified_ms >= cutoff || si.indicator.valid_until_ms.is_some());
            changed |= self.accum.len() != before;
        }
        self.report = report;
        self.meta.last_success_ms = Some(now);
        self.status = FeedStatus::Ok;
        if changed {
            self.meta.last_change_ms = Some(now);
            self.indicators = Arc::new(self.accum.values().cloned().collect());
            self.save_cache(None).await;
        }
        self.message = format!(
            "{} entries ({} skipped in the last poll)",
            self.indicators.len(),
            self.report.skipped
        );
        Ok(changed)
    }

    async fn refresh_misp(
        &mut self,
        client: &reqwest::Client,
        now: i64,
    ) -> Result<bool, (FeedStatus, String)> {
        let fail = |m: String| (FeedStatus::Failed, m);
        let base = self.base_url();
        let manifest_url = format!("{base}manifest.json");
        let bytes = match get(
            client,
            &self.config,
            &manifest_url,
            self.meta.etag.as_deref(),
            self.meta.last_modified.as_deref(),
        )
        .await
        .map_err(fail)?
        {
            Fetched::NotModified => {
                self.meta.last_success_ms = Some(now);
                self.status = FeedStatus::Ok;
                self.message = format!("unchanged ({} entries)", self.indicators.len());
                return Ok(false);
            }
            Fetched::Body {
                bytes,
                etag,
                last_modified,
            } => {
                self.meta.etag = etag;
                self.meta.last_modified = last_modified;
                bytes
            }
        };
        let mut report = Report::default();
        let manifest =
            formats::parse_misp_manifest(&bytes, &mut report).map_err(|e| fail(e.to_string()))?;
        let old_events = self.meta.misp_events.len();
        let floor = old_events * (100 - self.config.max_shrink_pct as usize) / 100;
        if old_events > 0 && manifest.len() < floor {
            return Err((
                FeedStatus::Held,
                format!(
                    "the manifest shrank from {old_events} to {} events, more than the {}% allowed; keeping the previous version",
                    manifest.len(),
                    self.config.max_shrink_pct
                ),
            ));
        }
        let mut changed = false;
        let listed: std::collections::HashSet<&str> =
            manifest.iter().map(|e| e.uuid.as_str()).collect();
        // Events gone from the manifest take their entries with them.
        let gone: Vec<String> = self
            .misp_keys
            .keys()
            .filter(|k| !listed.contains(k.as_str()))
            .cloned()
            .collect();
        for ev in gone {
            for k in self.misp_keys.remove(&ev).unwrap_or_default() {
                self.accum.remove(&k);
            }
            self.meta.misp_events.remove(&ev);
            changed = true;
        }
        for e in manifest.iter().take(10_000) {
            if self.meta.misp_events.get(&e.uuid) == Some(&e.timestamp) {
                continue;
            }
            let url = format!("{base}{}.json", e.uuid);
            let bytes = match get(client, &self.config, &url, None, None).await {
                Ok(Fetched::Body { bytes, .. }) => bytes,
                Ok(Fetched::NotModified) => continue,
                Err(err) => {
                    report.skip(&e.uuid, err);
                    continue;
                }
            };
            let v = match formats::parse_misp_event(&bytes, &mut report) {
                Ok(v) => v,
                Err(err) => {
                    report.skip(&e.uuid, err);
                    continue;
                }
            };
            for k in self.misp_keys.remove(&e.uuid).unwrap_or_default() {
                self.accum.remove(&k);
            }
            let mut keys = Vec::with_capacity(v.len());
            for i in v {
                let key = format!(
                    "{}|{}",
                    e.uuid,
                    i.source_id.clone().unwrap_or_else(|| i.value.to_string())
                );
                let mut si = SourcedIndicator::from_feed(i, now);
                si.modified_ms = now;
                self.accum.insert(key.clone(), si);
                keys.push(key);
            }
            self.misp_keys.insert(e.uuid.clone(), keys);
            self.meta.misp_events.insert(e.uuid.clone(), e.timestamp);
            changed = true;
        }
        self.report = report;
        self.meta.last_success_ms = Some(now);
        self.status = FeedStatus::Ok;
        if changed {
            self.meta.last_change_ms = Some(now);
            self.indicators = Arc::new(self.accum.values().cloned().collect());
        }
        self.save_cache(None).await;
        self.message = format!(
            "{} entries from {} events ({} skipped)",
            self.indicators.len(),
            self.meta.misp_events.len(),
            self.report.skipped
        );
        Ok(changed)
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn read_file_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{} is larger than the feed's max_bytes ({max})",
            path.display()
        ));
    }
    if path.extension().is_some_and(|e| e == "gz") {
        return gunzip_bounded(&bytes, max);
    }
    Ok(bytes)
}

fn gunzip_bounded(bytes: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() as u64 > max {
        return Err(format!(
            "decompresses to more than the feed's max_bytes ({max})"
        ));
    }
    Ok(out)
}

enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// The HTTP client feeds, webhooks and partners' servers are reached with: bounded time, no
/// cookies, the public web roots plus `ca_file` (PEM) if given.
pub fn client_with(ca_file: &str) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .user_agent(concat!("watchhouse/", env!("CARGO_PKG_VERSION")));
    if !ca_file.is_empty() {
        match std::fs::read(ca_file)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()))
        {
            Ok(certs) => {
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            Err(e) => {
                tracing::error!(path = ca_file, error = %e, "cannot read feed_ca_file; using the public roots only")
            }
        }
    }
    b.build().unwrap_or_default()
}

/// [`client_with`] without extra roots.
pub fn client() -> reqwest::Client {
    client_with("")
}

async fn read_body(mut res: reqwest::Response, max: u64, url: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("{}: {e}", redact(url)))?
    {
        if bytes.len() as u64 + chunk.len() as u64 > max {
            return Err(format!(
                "{} is larger than the feed's max_bytes ({max})",
                redact(url)
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn get(
    client: &reqwest::Client,
    cfg: &FeedConfig,
    url: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Result<Fetched, String> {
    let mut req = client.get(url);
    if let Some(e) = etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, e);
    }
    if let Some(l) = last_modified {
        req = req.header(reqwest::header::IF_MODIFIED_SINCE, l);
    }
    if !cfg.authorization.is_empty() {
        req = req.header(reqwest::header::AUTHORIZATION, &cfg.authorization);
    }
    let res = req
        .send()
        .await
        .map_err(|e| format!("{}: {e}", redact(url)))?;
    if res.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !res.status().is_success() {
        return Err(format!("{} answered {}", redact(url), res.status()));
    }
    let header = |h: reqwest::header::HeaderName| {
        res.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let gz = url.ends_with(".gz");
    let mut bytes = read_body(res, cfg.max_bytes, url).await?;
    if gz {
        bytes = gunzip_bounded(&bytes, cfg.max_bytes)?;
    }
    Ok(Fetched::Body {
        bytes,
        etag,
        last_modified,
    })
}

async fn get_taxii(
    client: &reqwest::Client,
    cfg: &FeedConfig,
    url: &str,
) -> Result<(Vec<u8>, Option<String>), String> {
    let mut req = client.get(url).header(
        reqwest::header::ACCEPT,
        "application/taxii+json;version=2.1",
    );
    if !cfg.authorization.is_empty() {
        req = req.header(reqwest::header::AUTHORIZATION, &cfg.authorization);
    }
    let res = req
        .send()
        .await
        .map_err(|e| format!("{}: {e}", redact(url)))?;
    if !res.status().is_success() {
        return Err(format!("{} answered {}", redact(url), res.status()));
    }
    let last = res
        .headers()
        .get("x-taxii-date-added-last")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((read_body(res, cfg.max_bytes, url).await?, last))
}

/// Reads every feed's saved copy and then tries to fetch each once (bounded in time), so the hub
/// starts with the freshest intelligence it can get and never without its last good version.
pub async fn initial(
    configs: &[FeedConfig],
    files: &watchhouse_files::Files,
    ca_file: &str,
) -> Vec<FeedState> {
    let client = client_with(ca_file);
    let mut out = Vec::new();
    for c in configs {
        let mut f = FeedState::new(c.clone(), files.clone());
        f.load_cache().await;
        match tokio::time::timeout(Duration::from_secs(20), f.refresh(&client, None)).await {
            Ok(_) => {}
            Err(_) => f.problem(
                FeedStatus::Failed,
                "the first fetch took longer than 20 s; will retry".into(),
                None,
            ),
        }
        out.push(f);
    }
    out
}

/// Gathers every source (feeds, analysts, partners) at `now`.
pub async fn sources(state: &AppState, feeds: &[FeedState], now: i64) -> Vec<SourceInput> {
    let mut v: Vec<SourceInput> = feeds.iter().map(|f| f.source(now)).collect();
    match state.store.list_indicators(true).await {
        Ok(list) => v.push(super::analyst_source(&list)),
        Err(e) => tracing::error!(error = %e, "cannot read analyst indicators"),
    }
    match crate::taxii::partner_source(state).await {
        Ok(s) => v.push(s),
        Err(e) => tracing::error!(error = %e, "cannot read partner submissions"),
    }
    // Addresses several members called false alarms are trusted half as much, nationally.
    let since = now - 30 * 86_400_000;
    match state
        .store
        .disputed_addresses(since, state.config.dispute_min_members)
        .await
    {
        Ok(d) if !d.is_empty() => {
            let disputed: std::collections::HashSet<std::net::IpAddr> =
                d.into_iter().map(|(ip, _)| ip).collect();
            let hit = |si: &SourcedIndicator| matches!(&si.indicator.value, watchhouse_intel::IndicatorValue::Ip(c) if c.is_host() && disputed.contains(&c.addr()));
            for s in v.iter_mut() {
                if !s.indicators.iter().any(hit) {
                    continue;
                }
                let mut list = (*s.indicators).clone();
                for si in list.iter_mut().filter(|si| hit(si)) {
                    let c = si.indicator.confidence.unwrap_or(s.confidence);
                    si.indicator.confidence = Some(c / 2);
                }
                s.indicators = Arc::new(list);
            }
            tracing::info!(
                addresses = disputed.len(),
                "disputed intelligence down-weighted"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot read disputed addresses"),
    }
    v
}

/// Rebuilds the intelligence from `feeds` and the store, off the async threads, and swaps it in.
pub async fn rebuild(state: &AppState, feeds: &[FeedState]) {
    let now = now_ms();
    let srcs = sources(state, feeds, now).await;
    match tokio::task::spawn_blocking(move || super::build(&srcs, now)).await {
        Ok(intel) => {
            tracing::info!(entries = intel.matcher.len(), watchlist = %intel.watchlist.version, "intelligence updated");
            state.set_intel(intel);
        }
        Err(e) => tracing::error!(error = %e, "intelligence build failed"),
    }
    state.set_feed_views(feeds.iter().map(|f| f.view(now)).collect());
}

/// Feeds added in the UI or API, as stored; unreadable entries are logged and skipped.
pub async fn ui_feeds(state: &AppState) -> Vec<FeedConfig> {
    match state.store.list_feed_configs().await {
        Ok(v) => v
            .into_iter()
            .filter_map(|(name, j)| match serde_json::from_str::<FeedConfig>(&j) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(feed = %name, error = %e, "stored feed settings unreadable; skipped");
                    None
                }
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read stored feeds");
            Vec::new()
        }
    }
}

/// Brings the running feeds in line with the configuration file plus the feeds stored from the
/// UI: new ones are started (from their saved copy first), removed ones dropped. True if the set
/// changed.
pub async fn reconcile(state: &AppState, feeds: &mut Vec<FeedState>) -> bool {
    let ui = ui_feeds(state).await;
    let before = feeds.len();
    feeds.retain(|f| !f.from_ui || ui.iter().any(|c| c.name == f.config.name && *c == f.config));
    let mut changed = feeds.len() != before;
    for c in ui {
        if feeds.iter().any(|f| f.config.name == c.name) {
            continue;
        }
        let mut f = FeedState::new(c, state.files.clone());
        f.from_ui = true;
        f.load_cache().await;
        feeds.push(f);
        changed = true;
    }
    changed
}

/// Keeps feeds fresh and the intelligence current: refreshes due feeds every
/// `feed_check_secs`, rebuilds when a feed changed, an entry expired, a feed expired, or
/// something asked ([`AppState::request_intel_rebuild`]: an analyst added an indicator, a
/// partner added objects). Runs until dropped.
pub async fn run(state: AppState, mut feeds: Vec<FeedState>) {
    let client = client_with(&state.config.feed_ca_file);
    let tick = Duration::from_secs(state.config.feed_check_secs.max(1));
    let mut expired: Vec<bool> = feeds.iter().map(|f| f.expired(now_ms())).collect();
    let generation = |st: &AppState| {
        let store = st.store.clone();
        async move { store.kv_get(crate::INTEL_GENERATION).await.ok().flatten() }
    };
    let mut seen = generation(&state).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = state.rebuild_wanted.notified() => {}
        }
        let now = now_ms();
        let mut changed = state
            .rebuild_requested
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        // Another hub process changed analysts' or partners' intelligence.
        let now_generation = generation(&state).await;
        if now_generation != seen {
            seen = now_generation;
            changed = true;
        }
        if reconcile(&state, &mut feeds).await {
            changed = true;
            expired = feeds.iter().map(|f| f.expired(now)).collect();
        }
        for (i, f) in feeds.iter_mut().enumerate() {
            if f.due(now) {
                changed |= f.refresh(&client, Some(&state)).await;
            }
            let e = f.expired(now);
            if e != expired[i] {
                if e {
                    f.problem(
                        FeedStatus::Expired,
                        "not refreshed within its expiry".into(),
                        Some(&state),
                    );
                }
                expired[i] = e;
                changed = true;
            }
        }
        if state.intel().next_expiry_ms.is_some_and(|t| t <= now) {
            changed = true;
        }
        if changed {
            rebuild(&state, &feeds).await;
        } else {
            state.set_feed_views(feeds.iter().map(|f| f.view(now)).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("https://u:p@feeds.example/x?y"),
            "https://***@feeds.example/x?y"
        );
        assert_eq!(
            redact("https://feeds.example/a@b"),
            "https://feeds.example/a@b"
        );
        assert_eq!(redact("/var/lib/x"), "/var/lib/x");
    }

    #[test]
    fn settings_are_checked() {
        let a = FeedConfig::file("a", "/x");
        assert!(validate(std::slice::from_ref(&a)).is_ok());
        assert!(validate(&[a.clone(), a.clone()])
            .unwrap_err()
            .contains("unique"));
        let mut b = a.clone();
        b.url = "ftp://x/y".into();
        assert!(validate(&[b]).unwrap_err().contains("scheme"));
        let mut c = a.clone();
        c.format = "xml".into();
        assert!(validate(&[c]).unwrap_err().contains("unknown format"));
        let mut d = a;
        d.name = "analysts".into();
        assert!(validate(&[d]).unwrap_err().contains("reserved"));
    }
}
