//! The hub: authenticated ingest from collectors, detection, storage, the JSON API, the web UI
//! and metrics, served by one axum router.
//!
//! ```text
//! collector ──POST /api/v1/ingest──▶ validate ─▶ detect (pure) ─▶ Store::ingest (one transaction)
//! browser   ──GET /members/{id}────▶ session ─▶ Scope ─▶ Store reads ─▶ web (pure rendering)
//! ```
//!
//! **Invariant: handlers never build a [`Scope`] themselves.** The scope comes from the session
//! ([`auth::Authed`]) or from the collector's own member, and every store read takes it.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use watchhouse_store::Store;

pub mod api;
pub mod auth;
pub mod blocklist;
pub mod config;
pub mod error;
pub mod intel;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod report;
pub mod share;
pub mod taxii;
pub mod tls;
pub mod worker;

pub use config::{CookieSecurity, FeedConfig, HubConfig};

/// Milliseconds since the epoch, now. The only clock read in the hub's request paths.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The setting that changes whenever analysts' or partners' intelligence changes.
pub const INTEL_GENERATION: &str = "intel_generation";

/// Shared state behind every handler.
pub struct Inner {
    /// Storage backend.
    pub store: Arc<dyn Store>,
    /// File store (feed copies, evidence): local directory or S3-compatible.
    pub files: watchhouse_files::Files,
    /// Settings.
    pub config: HubConfig,
    /// Counters.
    pub metrics: metrics::Metrics,
    /// The current intelligence; replaced whole when feeds change.
    intel: RwLock<Arc<intel::Intel>>,
    /// Sign-in rate limit.
    pub limiter: auth::LoginLimiter,
    /// Whether cookies carry `Secure`.
    pub secure_cookies: bool,
    /// What administrators see of the feeds, refreshed by the feed task.
    feed_views: RwLock<Vec<intel::FeedView>>,
    /// Wakes the feed task for a rebuild.
    pub rebuild_wanted: tokio::sync::Notify,
    /// Set with [`AppState::request_intel_rebuild`]; the feed task clears it.
    pub rebuild_requested: std::sync::atomic::AtomicBool,
    /// Recently verified HTTP Basic credentials (SHA-256 of `email:password`) → user id and
    /// expiry, so machine clients do not pay for argon2 on every request.
    pub basic_cache: std::sync::Mutex<
        std::collections::HashMap<[u8; 32], (watchhouse_store::Id, std::time::Instant)>,
    >,
    /// The shared STIX objects per TLP ceiling, with the intelligence build they came from and
    /// when: TAXII clients page through one snapshot (at most ten seconds old) instead of rebuilding
    /// it per page.
    pub share_cache: std::sync::Mutex<share::ShareCache>,
    /// The IP-to-ASN table, when configured.
    asn: RwLock<Option<Arc<watchhouse_intel::asn::AsnTable>>>,
    /// The stateful detections' memory (scans, brute force, campaigns, volume).
    pub engine: std::sync::Mutex<watchhouse_detect::Engine>,
    /// The queue to workers, one per partition (API nodes in scale-out); a member's batches
    /// always go to partition `member_id % partitions`. Unset: batches are stored in the request.
    pub queue: std::sync::OnceLock<Vec<Arc<dyn watchhouse_queue::Queue>>>,
    /// This process's name in leases (notifier, retention): only one process runs each.
    pub node_id: String,
}

/// Cheaply clonable handle to [`Inner`].
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Arc<dyn Store>,
        files: watchhouse_files::Files,
        config: HubConfig,
        intel: intel::Intel,
    ) -> AppState {
        let listen_is_loopback = config
            .listen
            .parse::<SocketAddr>()
            .map(|a| a.ip().is_loopback())
            .unwrap_or(false);
        let secure_cookies = match config.secure_cookies {
            CookieSecurity::Always => true,
            CookieSecurity::Never => false,
            CookieSecurity::Auto => !listen_is_loopback || config.tls_enabled(),
        };
        let metrics = metrics::Metrics::new();
        let thresholds = config.detect.clone();
        metrics.intel_entries.store(
            intel.matcher.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        AppState(Arc::new(Inner {
            store,
            files,
            limiter: auth::LoginLimiter::new(
                config.login_max_failures,
                Duration::from_secs(config.login_window_secs),
            ),
            config,
            metrics,
            intel: RwLock::new(Arc::new(intel)),
            secure_cookies,
            feed_views: RwLock::new(Vec::new()),
            rebuild_wanted: tokio::sync::Notify::new(),
            rebuild_requested: std::sync::atomic::AtomicBool::new(false),
            basic_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            share_cache: std::sync::Mutex::new(Default::default()),
            engine: std::sync::Mutex::new(watchhouse_detect::Engine::new(thresholds)),
            asn: RwLock::new(None),
            queue: std::sync::OnceLock::new(),
            node_id: uuid::Uuid::new_v4().to_string(),
        }))
    }

    /// The intelligence in use now.
    pub fn intel(&self) -> Arc<intel::Intel> {
        self.intel.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The IP-to-ASN table, if loaded.
    pub fn asn(&self) -> Option<Arc<watchhouse_intel::asn::AsnTable>> {
        self.asn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads the configured IP-to-ASN table (a failure is logged; reports then say "not known").
    pub fn load_asn(&self) {
        if let Some(t) = load_asn_table(&self.config.asn_db) {
            *self.asn.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(t));
        }
    }

    /// The feeds as last seen by the feed task.
    pub fn feed_views(&self) -> Vec<intel::FeedView> {
        self.feed_views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the feed views.
    pub fn set_feed_views(&self, v: Vec<intel::FeedView>) {
        *self.feed_views.write().unwrap_or_else(|p| p.into_inner()) = v;
    }

    /// Asks the feed task to rebuild the intelligence soon (after an analyst or partner change),
    /// here at once and, through the shared `intel_generation` setting, in every other hub
    /// process at its next feed check.
    pub fn request_intel_rebuild(&self) {
        self.rebuild_requested
            .store(true, std::sync::atomic::Ordering::Release);
        self.rebuild_wanted.notify_one();
        let store = self.store.clone();
        let generation = uuid::Uuid::new_v4().to_string();
        tokio::spawn(async move {
            if let Err(e) = store.kv_set(INTEL_GENERATION, &generation).await {
                tracing::warn!(error = %e, "other hub processes will see the change only at their next feed refresh");
            }
        });
    }

    /// Swaps in new intelligence; lookups in flight finish on the old one.
    pub fn set_intel(&self, i: intel::Intel) {
        self.metrics
            .intel_entries
            .store(i.matcher.len() as u64, std::sync::atomic::Ordering::Relaxed);
        *self.intel.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(i);
    }
}

/// Reads an IP-to-ASN table from `path` (empty: none), bounded at 1 GiB.
pub fn load_asn_table(path: &str) -> Option<watchhouse_intel::asn::AsnTable> {
    use std::io::Read;
    if path.is_empty() {
        return None;
    }
    let mut bytes = Vec::new();
    let r = std::fs::File::open(path).and_then(|f| f.take(1 << 30).read_to_end(&mut bytes));
    if let Err(e) = r {
        tracing::error!(path, error = %e, "cannot read the IP-to-ASN table; reports will not show networks");
        return None;
    }
    let (t, rep) = watchhouse_intel::asn::AsnTable::parse(&bytes);
    if rep.skipped > 0 {
        tracing::warn!(path, skipped = rep.skipped, samples = ?rep.samples, "IP-to-ASN lines skipped");
    }
    tracing::info!(path, ranges = t.len(), "IP-to-ASN table loaded");
    Some(t)
}

async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Every route.
pub fn router(state: AppState) -> Router {
    if !state.config.role.serves_api() {
        // A worker answers only its operators: health and metrics.
        return Router::new()
            .route("/healthz", get(api::healthz))
            .route("/metrics", get(api::metrics))
            .fallback(pages::not_found)
            .layer(axum::middleware::from_fn(security_headers))
            .with_state(state);
    }
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/static/app.css", get(pages::css))
        .route("/static/favicon.svg", get(pages::favicon))
        .route("/favicon.ico", get(pages::favicon))
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/members/{id}", get(pages::member))
        .route("/members/{id}/report", get(report::page))
        .route(
            "/members/{id}/blocklist-exclusions",
            post(pages::exclusion_add),
        )
        .route(
            "/members/{id}/blocklist-exclusions/delete",
            post(pages::exclusion_delete),
        )
        .route("/alerts/{id}", get(pages::alert))
        .route("/alerts/{id}/status", post(pages::alert_status))
        .route("/alerts/{id}/feedback", post(pages::alert_feedback))
        .route("/intel", get(pages::intel))
        .route("/area", get(pages::area))
        .route(
            "/notifications",
            get(pages::notifications).post(pages::notifications_save),
        )
        .route("/api/v1/evidence", get(pages::evidence))
        .route("/intel/indicators", post(pages::intel_add))
        .route("/intel/feeds", post(pages::intel_feed_add))
        .route("/intel/feeds/{name}/delete", post(pages::intel_feed_delete))
        .route("/intel/indicators/{id}/revoke", post(pages::intel_revoke))
        .route("/api/v1/enrol", post(api::enrol))
        .route("/api/v1/collector/watchlist", get(api::watchlist))
        .route("/api/v1/collector/heartbeat", post(api::heartbeat))
        .route(
            "/api/v1/ingest",
            post(api::ingest).layer(DefaultBodyLimit::max(watchhouse_proto::MAX_BATCH_BYTES)),
        )
        .route("/api/v1/me", get(api::me))
        .route(
            "/api/v1/me/notifications",
            get(api::my_notifications).put(api::set_my_notifications),
        )
        .route(
            "/api/v1/members/{id}/webhooks",
            get(api::webhooks).post(api::add_webhook),
        )
        .route(
            "/api/v1/members/{id}/webhooks/{hook}",
            axum::routing::delete(api::delete_webhook),
        )
        .route("/api/v1/forces", get(api::forces))
        .route("/api/v1/forces/{id}/members", get(api::force_members))
        .route("/api/v1/members", get(api::members))
        .route("/api/v1/members/{id}", get(api::member))
        .route("/api/v1/members/{id}/events", get(api::member_events))
        .route("/api/v1/members/{id}/alerts", get(api::member_alerts))
        .route("/api/v1/members/{id}/summary", get(api::member_summary))
        .route("/api/v1/members/{id}/report", get(report::api))
        .route(
            "/api/v1/members/{id}/collectors",
            get(api::member_collectors),
        )
        .route(
            "/api/v1/members/{id}/enrolment-tokens",
            post(api::create_enrolment_token),
        )
        .route(
            "/api/v1/members/{id}/blocklist/{format}",
            get(blocklist::blocklist),
        )
        .route(
            "/api/v1/members/{id}/blocklist-exclusions",
            get(blocklist::list_exclusions).post(blocklist::add_exclusion),
        )
        .route(
            "/api/v1/members/{id}/blocklist-exclusions/{cidr}",
            axum::routing::delete(blocklist::delete_exclusion),
        )
        .route(
            "/api/v1/intel/feeds",
            get(blocklist::feeds).post(blocklist::add_feed),
        )
        .route(
            "/api/v1/intel/feeds/{name}",
            axum::routing::delete(blocklist::delete_feed),
        )
        .route(
            "/api/v1/intel/indicators",
            get(blocklist::list_indicators).post(blocklist::add_indicator),
        )
        .route(
            "/api/v1/intel/indicators/{id}",
            axum::routing::delete(blocklist::revoke_indicator),
        )
        .route("/api/v1/intel/check/{value}", get(blocklist::check))
        .route("/api/v1/intel/export/stix", get(blocklist::export_stix))
        .route(
            "/api/v1/intel/export/misp/{file}",
            get(blocklist::export_misp),
        )
        .route("/taxii2/", get(taxii::discovery))
        .route("/taxii2/api/", get(taxii::api_root))
        .route("/taxii2/api/collections/", get(taxii::collections))
        .route("/taxii2/api/collections/{id}/", get(taxii::collection))
        .route(
            "/taxii2/api/collections/{id}/objects/",
            get(taxii::objects)
                .post(taxii::add_objects)
                .layer(DefaultBodyLimit::max(taxii::MAX_CONTENT_LENGTH)),
        )
        .route(
            "/taxii2/api/collections/{id}/objects/{object_id}/",
            get(taxii::object),
        )
        .route(
            "/taxii2/api/collections/{id}/objects/{object_id}/versions/",
            get(taxii::versions),
        )
        .route(
            "/taxii2/api/collections/{id}/manifest/",
            get(taxii::manifest),
        )
        .route("/taxii2/api/status/{id}/", get(taxii::status))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/alerts/{id}", get(api::alert))
        .route("/api/v1/alerts/{id}/status", post(api::alert_status))
        .route("/api/v1/alerts/{id}/feedback", post(api::alert_feedback))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// Serves the hub on `listener` (plain TCP, or [`tls::TlsListener`]) until `shutdown`
/// completes, then finishes in-flight requests.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    tls::ClientAddr:
        for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let app = router(state).into_make_service_with_connect_info::<tls::ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
