//! JSON endpoints: collector enrolment and ingest, and the read API behind the web UI.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use watchhouse_detect::{describe, AlertFacts};
use watchhouse_event::{Direction, Event};
use watchhouse_proto::{
    Batch, CollectorSettings, EnrolRequest, EnrolResponse, IngestResponse, IDEMPOTENCY_HEADER,
    MAX_BATCH_EVENTS, WIRE_VERSION,
};
use watchhouse_store::{day_of, AlertStatus, Collector, Id, Role, Scope};

use crate::auth::{ct_eq, hash_secret, random_token, Authed};
use crate::error::ApiError;
use crate::{now_ms, AppState};

/// `GET /healthz`: the process is up and the database answers.
pub async fn healthz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.store.list_forces(&Scope::Members(vec![])).await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
}

fn clip(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

async fn settings_for(st: &AppState, member_id: Id) -> Result<CollectorSettings, ApiError> {
    let m = st
        .store
        .get_member(&Scope::Members(vec![member_id]), member_id)
        .await?;
    Ok(CollectorSettings {
        member_networks: m.as_ref().map(|m| m.networks.clone()).unwrap_or_default(),
        send_outbound: m.map(|m| m.send_outbound).unwrap_or(false),
        upload_interval_ms: st.config.upload_interval_ms,
        watchlist_version: st.intel().watchlist.version.clone(),
    })
}

/// `POST /api/v1/enrol`: a one-time token becomes a collector credential.
pub async fn enrol(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<Json<EnrolResponse>, ApiError> {
    let req: EnrolRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "Expected {{\"token\", \"name\", \"version\"}}: {}",
                clip(&e.to_string(), 200)
            ),
        )
    })?;
    let name = req.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "Give the collector a name of 1 to 100 printable characters, e.g. the site it reads.",
        ));
    }
    let credential = format!("whc_{}", random_token());
    let collector = st
        .store
        .redeem_enrolment_token(
            &hash_secret(req.token.trim()),
            name,
            &hash_secret(&credential),
            now_ms(),
        )
        .await?;
    let Some(collector) = collector else {
        st.metrics
            .ingest_unauthorised
            .fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::unauthorised(
            "invalid_enrolment_token",
            "This enrolment token is unknown, expired or already used. Ask your Watchhouse administrator for a new one.",
        ));
    };
    tracing::info!(collector = collector.id, member = collector.member_id, name = %collector.name, "collector enrolled");
    Ok(Json(EnrolResponse {
        collector_id: collector.id.to_string(),
        member_id: collector.member_id.to_string(),
        credential,
        settings: settings_for(&st, collector.member_id).await?,
    }))
}

async fn collector_auth(st: &AppState, headers: &HeaderMap) -> Result<Collector, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(cred) = bearer else {
        st.metrics
            .ingest_unauthorised
            .fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::unauthorised(
            "missing_credential",
            "Send the collector credential as `Authorization: Bearer <credential>`. Enrol the collector first if it has none.",
        ));
    };
    match st.store.collector_by_credential(&hash_secret(cred)).await? {
        Some(c) => Ok(c),
        None => {
            st.metrics
                .ingest_unauthorised
                .fetch_add(1, Ordering::Relaxed);
            Err(ApiError::unauthorised(
                "invalid_credential",
                "This collector's credential is not valid or has been revoked. Enrol it again with a new token from your Watchhouse administrator.",
            ))
        }
    }
}

/// Largest decompressed batch (a compressed body can expand ~1000×: a zip bomb must not).
pub const MAX_DECOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;

/// Room for the decompressed body, so that it is read without regrowing: the size the body
/// declares (a zstd frame's content size, a gzip member's length trailer) where it has one,
/// never beyond the bound or a plausible ratio, and four times the compressed size otherwise.
/// A false declaration costs nothing but a reallocation: the bound is enforced on what is read.
fn decoded_size_hint(enc: &str, body: &[u8]) -> usize {
    let declared = match enc {
        "zstd" => zstd::zstd_safe::get_frame_content_size(body).ok().flatten(),
        // ISIZE: the uncompressed length modulo 2^32, in the last four bytes (RFC 1952).
        _ => body
            .last_chunk::<4>()
            .map(|b| u64::from(u32::from_le_bytes(*b))),
    };
    // Deflate expands at most ~1032 times (zstd can go further, then the buffer grows as it
    // is read): a short body cannot make the hub reserve much.
    let plausible = (body.len() as u64).saturating_mul(1032);
    let n = match declared {
        Some(n) if n > 0 => n.min(plausible),
        _ => body.len() as u64 * 4,
    };
    n.min(MAX_DECOMPRESSED_BYTES + 1) as usize
}

/// Applies `Content-Encoding` (identity, gzip or zstd), bounded by [`MAX_DECOMPRESSED_BYTES`].
fn decode_body(headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match enc.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "zstd" => {
            use std::io::Read;
            let mut out = Vec::with_capacity(decoded_size_hint(&enc, &body));
            let read = if enc == "gzip" {
                flate2::read::GzDecoder::new(&body[..])
                    .take(MAX_DECOMPRESSED_BYTES + 1)
                    .read_to_end(&mut out)
            } else {
                zstd::stream::read::Decoder::new(&body[..])
                    .and_then(|d| d.take(MAX_DECOMPRESSED_BYTES + 1).read_to_end(&mut out))
            };
            read.map_err(|e| {
                ApiError::bad_request(
                    "invalid_batch",
                    format!("The {enc} body could not be decompressed: {e}"),
                )
            })?;
            if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "batch_too_large",
                    format!("The batch expands beyond {MAX_DECOMPRESSED_BYTES} bytes; send smaller batches."),
                ));
            }
            Ok(Bytes::from(out))
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding `{other}` is not supported: send identity, gzip or zstd."),
        )),
    }
}

/// `GET /api/v1/collector/watchlist`: the outbound watchlist for an enrolled collector
/// (gzip, one CIDR per line; `ETag` is the version, `If-None-Match` answers 304).
pub async fn watchlist(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    collector_auth(&st, &headers).await?;
    let intel = st.intel();
    let etag = format!("\"{}\"", intel.watchlist.version);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_ENCODING, "gzip".to_owned()),
            (header::ETAG, etag),
        ],
        intel.watchlist.gz.clone(),
    )
        .into_response())
}

/// `POST /api/v1/collector/heartbeat`: an idle collector's health; answers its settings.
pub async fn heartbeat(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CollectorSettings>, ApiError> {
    let collector = collector_auth(&st, &headers).await?;
    let hb: watchhouse_proto::Heartbeat = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_heartbeat",
            format!(
                "Expected {{\"collector_version\", \"stats\"}}: {}",
                clip(&e.to_string(), 200)
            ),
        )
    })?;
    if hb.stats.samples.len() > 100 || hb.collector_version.len() > 64 {
        return Err(ApiError::bad_request(
            "invalid_heartbeat",
            "Too many samples or too long a version.",
        ));
    }
    st.store
        .collector_heartbeat(collector.id, &hb.collector_version, &hb.stats, now_ms())
        .await?;
    Ok(Json(settings_for(&st, collector.member_id).await?))
}

/// Longest raw line stored.
pub const MAX_RAW_BYTES: usize = 64 * 1024;
/// Longest short text field (interface, rule, device).
pub const MAX_FIELD_BYTES: usize = 255;

/// Why the hub refuses an event inside an otherwise valid batch.
pub fn check_event(
    e: &Event,
    now: i64,
    max_age_ms: i64,
    max_future_ms: i64,
) -> Result<(), &'static str> {
    if e.direction == Direction::Internal {
        // Defence in depth: collectors never send internal traffic; the hub never stores it.
        return Err("internal_traffic");
    }
    if e.time_ms < now - max_age_ms || e.time_ms > now + max_future_ms {
        return Err("time_out_of_range");
    }
    if e.last_ms != 0 && (e.last_ms < e.time_ms || e.last_ms > now + max_future_ms) {
        return Err("time_out_of_range");
    }
    if e.count == 0 {
        return Err("bad_count");
    }
    if e.raw.len() > MAX_RAW_BYTES {
        return Err("raw_too_long");
    }
    let long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_FIELD_BYTES);
    if long(&e.in_iface)
        || long(&e.out_iface)
        || long(&e.rule)
        || long(&e.device)
        || long(&e.product)
    {
        return Err("field_too_long");
    }
    // Names must be exactly as a collector normalises them: anything else was not produced by
    // Watchhouse's parsers and is refused rather than matched.
    if let Some(h) = &e.host {
        if watchhouse_event::names::normalise_domain(h).as_deref() != Some(h.as_str()) {
            return Err("bad_host");
        }
    }
    if let Some(u) = &e.url {
        if watchhouse_event::names::normalise_url(u).as_deref() != Some(u.as_str()) {
            return Err("bad_url");
        }
    }
    Ok(())
}

/// Puts a validated batch on the queue for a worker.
async fn queue_batch(
    st: &AppState,
    queue: &dyn watchhouse_queue::Queue,
    collector: &Collector,
    batch: &Batch,
    events: Vec<Event>,
    now: i64,
) -> Result<watchhouse_store::IngestOutcome, ApiError> {
    let accepted = events.len() as u64;
    let q = crate::worker::QueuedBatch {
        collector: collector.clone(),
        batch: Batch {
            version: batch.version,
            batch_id: batch.batch_id,
            collector_version: batch.collector_version.clone(),
            sealed_at_ms: batch.sealed_at_ms,
            events,
            stats: batch.stats.clone(),
        },
        received_ms: now,
    };
    let fresh = crate::worker::enqueue(st, queue, &q).await.map_err(|e| {
        tracing::error!(error = %e, "cannot queue a batch; the collector will retry");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "The hub cannot take batches just now; keep the batch and retry.",
        )
    })?;
    Ok(watchhouse_store::IngestOutcome {
        accepted,
        duplicate: !fresh,
        ..Default::default()
    })
}

/// `POST /api/v1/ingest`: a batch from an enrolled collector, stored exactly once.
pub async fn ingest(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IngestResponse>, ApiError> {
    let collector = collector_auth(&st, &headers).await?;
    let body = decode_body(&headers, body).inspect_err(|_| st.metrics.batch("rejected"))?;
    let mut batch: Batch = serde_json::from_slice(&body).map_err(|e| {
        st.metrics.batch("rejected");
        ApiError::bad_request(
            "invalid_batch",
            format!(
                "The batch is not valid wire-format version {WIRE_VERSION} JSON: {}",
                clip(&e.to_string(), 300)
            ),
        )
    })?;
    if batch.version != WIRE_VERSION {
        st.metrics.batch("rejected");
        return Err(ApiError::bad_request(
            "unsupported_version",
            format!(
                "Wire version {} is not supported by this hub (it reads version {WIRE_VERSION}). Upgrade the hub or the collector so they match.",
                batch.version
            ),
        ));
    }
    if let Some(key) = headers.get(IDEMPOTENCY_HEADER) {
        if key.to_str().ok() != Some(batch.batch_id.to_string().as_str()) {
            st.metrics.batch("rejected");
            return Err(ApiError::bad_request(
                "idempotency_mismatch",
                "The Idempotency-Key header must equal the batch_id in the body.",
            ));
        }
    }
    if batch.events.len() > MAX_BATCH_EVENTS {
        st.metrics.batch("rejected");
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("A batch holds at most {MAX_BATCH_EVENTS} events; split it."),
        ));
    }
    let now = now_ms();
    let max_age = st.config.max_event_age_days as i64 * 86_400_000;
    let max_future = st.config.max_event_future_secs as i64 * 1000;
    let mut rejected: BTreeMap<&'static str, u64> = BTreeMap::new();
    // The accepted events move out of the batch (no copies); the batch keeps its id and health.
    let events: Vec<Event> = std::mem::take(&mut batch.events)
        .into_iter()
        .filter(|e| match check_event(e, now, max_age, max_future) {
            Ok(()) => true,
            Err(reason) => {
                *rejected.entry(reason).or_default() += 1;
                false
            }
        })
        .collect();
    let rejected_total: u64 = rejected.values().sum();
    let out = match st.queue.get() {
        // Scale-out: answer once the queue holds the batch durably; the worker holding the
        // member's partition stores it.
        Some(parts) if !parts.is_empty() => {
            let p = crate::worker::partition_of(collector.member_id, parts.len());
            queue_batch(&st, &*parts[p], &collector, &batch, events, now).await?
        }
        _ => crate::worker::store_batch(&st, &collector, &batch, events, now).await?,
    };
    // Counted once per batch, not again on a collector's retry.
    if !out.duplicate && rejected_total > 0 {
        for (reason, n) in &rejected {
            st.metrics.rejected(reason, *n);
        }
        tracing::warn!(
            collector = collector.id,
            ?rejected,
            "events refused at ingest"
        );
    }
    Ok(Json(IngestResponse {
        batch_id: batch.batch_id,
        accepted: out.accepted,
        duplicate: out.duplicate,
        rejected: rejected_total,
        settings: settings_for(&st, collector.member_id).await?,
    }))
}

/// `GET /api/v1/me`.
pub async fn me(a: Authed) -> Json<Value> {
    Json(json!({ "user": a.session.user }))
}

/// `GET /api/v1/forces`.
pub async fn forces(State(st): State<AppState>, a: Authed) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "forces": st.store.list_forces(&a.scope).await? }),
    ))
}

/// `GET /api/v1/forces/{id}/members`.
pub async fn force_members(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
) -> Result<Json<Value>, ApiError> {
    if a.session.user.role.is_member_side() {
        return Err(ApiError::not_found("force"));
    }
    let forces = st.store.list_forces(&a.scope).await?;
    if !forces.iter().any(|f| f.id == id) {
        return Err(ApiError::not_found("force"));
    }
    let members: Vec<_> = st
        .store
        .list_members(&a.scope)
        .await?
        .into_iter()
        .filter(|m| m.force_id == id)
        .collect();
    Ok(Json(json!({ "members": members })))
}

/// `GET /api/v1/members`.
pub async fn members(State(st): State<AppState>, a: Authed) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "members": st.store.list_members(&a.scope).await? }),
    ))
}

async fn visible_member(
    st: &AppState,
    a: &Authed,
    id: Id,
) -> Result<watchhouse_store::Member, ApiError> {
    st.store
        .get_member(&a.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))
}

/// `GET /api/v1/members/{id}`.
pub async fn member(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "member": visible_member(&st, &a, id).await? }),
    ))
}

/// `?limit=` on list endpoints.
#[derive(Debug, Deserialize)]
pub struct Limit {
    /// At most this many items (capped at 1000).
    pub limit: Option<u32>,
}

/// `GET /api/v1/members/{id}/events`.
pub async fn member_events(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    visible_member(&st, &a, id).await?;
    let events = st
        .store
        .recent_events(&a.scope, id, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "events": events })))
}

/// `GET /api/v1/members/{id}/alerts`.
pub async fn member_alerts(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    visible_member(&st, &a, id).await?;
    let alerts = st
        .store
        .alerts(&a.scope, Some(id), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "alerts": alerts })))
}

/// `?days=` for the summary.
#[derive(Debug, Deserialize)]
pub struct Days {
    /// How many days back (1–90, default 14).
    pub days: Option<i64>,
}

/// `GET /api/v1/members/{id}/summary`: per-day counts, top sources and ports.
pub async fn member_summary(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
    Query(q): Query<Days>,
) -> Result<Json<Value>, ApiError> {
    visible_member(&st, &a, id).await?;
    let days = q.days.unwrap_or(14).clamp(1, 90);
    let today = day_of(now_ms());
    let from = today - days + 1;
    Ok(Json(json!({
        "from_day": from,
        "to_day": today,
        "total_events": st.store.event_total(&a.scope, id).await?,
        "days": st.store.daily_counts(&a.scope, id, from, today).await?,
        "top_sources": st.store.top_sources(&a.scope, id, from, 10).await?,
        "top_ports": st.store.top_ports(&a.scope, id, from, 10).await?,
    })))
}

/// `GET /api/v1/members/{id}/collectors`.
pub async fn member_collectors(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
) -> Result<Json<Value>, ApiError> {
    visible_member(&st, &a, id).await?;
    Ok(Json(
        json!({ "collectors": st.store.list_collectors(&a.scope, Some(id)).await? }),
    ))
}

/// Refuses a cookie-authenticated write without the session's CSRF token in `X-CSRF-Token`.
/// Bearer-token callers send no cookie, so there is nothing to forge and no token to check.
pub fn require_csrf(a: &Authed, headers: &HeaderMap) -> Result<(), ApiError> {
    if a.via_token {
        return Ok(());
    }
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct_eq(sent, &a.session.csrf) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Send the session's CSRF token in the X-CSRF-Token header (GET /api/v1/me does not reveal it; read it from a page form).",
        ))
    }
}

/// `POST /api/v1/members/{id}/enrolment-tokens`: a one-time token for a new collector.
pub async fn create_enrolment_token(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<Id>,
) -> Result<impl IntoResponse, ApiError> {
    require_csrf(&a, &headers)?;
    visible_member(&st, &a, id).await?;
    if !matches!(
        a.session.user.role,
        Role::MemberAdmin | Role::ForceOfficer | Role::Admin
    ) {
        return Err(ApiError::forbidden(
            "Only a member administrator, the member's force officer or an administrator can enrol collectors.",
        ));
    }
    let token = format!("whe_{}", random_token());
    let now = now_ms();
    let expires = now + st.config.enrolment_token_hours as i64 * 3_600_000;
    st.store
        .create_enrolment_token(id, &hash_secret(&token), now, expires)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "member_id": id, "expires_ms": expires })),
    ))
}

/// `GET /api/v1/alerts`: alerts across every member in scope.
pub async fn alerts(
    State(st): State<AppState>,
    a: Authed,
    Query(q): Query<Limit>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "alerts": st.store.alerts(&a.scope, None, q.limit.unwrap_or(100)).await? }),
    ))
}

/// `GET /api/v1/alerts/{id}`: an alert, its plain-English text and its evidence.
pub async fn alert(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
) -> Result<Json<Value>, ApiError> {
    let (alert, evidence) = st
        .store
        .alert(&a.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert"))?;
    let text = describe(&AlertFacts {
        kind: alert.kind,
        severity: alert.severity,
        subject_ip: alert.subject_ip,
        lists: alert.lists.clone(),
        ports: alert.ports.clone(),
        event_count: alert.event_count,
    });
    Ok(Json(json!({
        "alert": alert,
        "title": text.title,
        "what_it_means": text.what_it_means,
        "what_to_do": text.what_to_do,
        "evidence": evidence,
    })))
}

/// Body of a status change.
#[derive(Debug, Deserialize)]
pub struct StatusBody {
    /// `new`, `acknowledged` or `resolved`.
    pub status: String,
}

/// `POST /api/v1/alerts/{id}/status`.
pub async fn alert_status(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Json(body): Json<StatusBody>,
) -> Result<Json<Value>, ApiError> {
    require_csrf(&a, &headers)?;
    let status = AlertStatus::from_name(&body.status).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_status",
            "status must be new, acknowledged or resolved",
        )
    })?;
    update_status(&st, &a, id, status).await?;
    Ok(Json(json!({ "id": id, "status": status })))
}

/// Body of a feedback.
#[derive(Debug, Deserialize)]
pub struct FeedbackBody {
    /// `expected`, `false_positive` or `confirmed`.
    pub feedback: String,
    /// Why, in the member's words.
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/alerts/{id}/feedback`.
pub async fn alert_feedback(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Json(body): Json<FeedbackBody>,
) -> Result<Json<Value>, ApiError> {
    require_csrf(&a, &headers)?;
    let fb = watchhouse_store::Feedback::from_name(&body.feedback).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_feedback",
            "feedback must be expected, false_positive or confirmed",
        )
    })?;
    give_feedback(&st, &a, id, fb, &body.note).await?;
    Ok(Json(json!({ "id": id, "feedback": fb })))
}

/// Shared by the API and the form: viewers cannot; the rest within their scope.
pub async fn give_feedback(
    st: &AppState,
    a: &Authed,
    id: Id,
    fb: watchhouse_store::Feedback,
    note: &str,
) -> Result<(), ApiError> {
    let Some((alert, _)) = st.store.alert(&a.scope, id).await? else {
        return Err(ApiError::not_found("alert"));
    };
    if a.session.user.role == Role::MemberViewer {
        return Err(ApiError::forbidden(
            "Your account can view alerts but not answer them. Ask your member administrator.",
        ));
    }
    if note.len() > 1000 {
        return Err(ApiError::bad_request(
            "invalid_note",
            "the note is longer than 1000 characters",
        ));
    }
    let now = now_ms();
    let until = now + st.config.feedback_suppress_days as i64 * 86_400_000;
    if !st
        .store
        .set_alert_feedback(
            &a.scope,
            id,
            watchhouse_store::FeedbackEntry {
                feedback: fb,
                note: note.to_owned(),
                by: a.session.user.email.clone(),
                now_ms: now,
                suppress_until_ms: until,
            },
        )
        .await?
    {
        return Err(ApiError::not_found("alert"));
    }
    tracing::info!(
        alert = id,
        user = a.session.user.id,
        feedback = fb.as_str(),
        "alert feedback"
    );
    if fb == watchhouse_store::Feedback::FalsePositive && !alert.lists.is_empty() {
        // Disputed intelligence is re-weighed in the next build.
        st.request_intel_rebuild();
    }
    Ok(())
}

/// Shared by the API and the form: viewers read only.
pub async fn update_status(
    st: &AppState,
    a: &Authed,
    id: Id,
    status: AlertStatus,
) -> Result<(), ApiError> {
    if a.session.user.role == Role::MemberViewer {
        // Do not reveal whether the alert exists to a viewer outside its scope.
        if st.store.alert(&a.scope, id).await?.is_none() {
            return Err(ApiError::not_found("alert"));
        }
        return Err(ApiError::forbidden(
            "Your account can view alerts but not change them. Ask your member administrator.",
        ));
    }
    if !st.store.set_alert_status(&a.scope, id, status).await? {
        return Err(ApiError::not_found("alert"));
    }
    tracing::info!(
        alert = id,
        user = a.session.user.id,
        status = status.as_str(),
        "alert status changed"
    );
    Ok(())
}

/// Most webhooks per member.
pub const MAX_WEBHOOKS: usize = 10;

/// `GET /api/v1/me/notifications`.
pub async fn my_notifications(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Value>, ApiError> {
    let (urgent, digest) = st.store.notify_prefs(a.session.user.id).await?;
    Ok(Json(
        json!({ "urgent_email": urgent, "daily_digest": digest }),
    ))
}

/// Notification preferences.
#[derive(Debug, Deserialize)]
pub struct NotifyBody {
    /// Urgent alerts by email at once.
    pub urgent_email: bool,
    /// A daily summary.
    pub daily_digest: bool,
}

/// `PUT /api/v1/me/notifications`.
pub async fn set_my_notifications(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Json(b): Json<NotifyBody>,
) -> Result<Json<Value>, ApiError> {
    require_csrf(&a, &headers)?;
    st.store
        .set_notify_prefs(a.session.user.id, b.urgent_email, b.daily_digest)
        .await?;
    Ok(Json(
        json!({ "urgent_email": b.urgent_email, "daily_digest": b.daily_digest }),
    ))
}

/// `GET /api/v1/members/{id}/webhooks` (secrets are never shown again).
pub async fn webhooks(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
) -> Result<Json<Value>, ApiError> {
    let v = st
        .store
        .list_webhooks(&a.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(json!({ "webhooks": v })))
}

/// A new webhook.
#[derive(Debug, Deserialize)]
pub struct WebhookBody {
    /// Where to POST urgent alerts.
    pub url: String,
}

/// `POST /api/v1/members/{id}/webhooks`: returns the signing secret, once.
pub async fn add_webhook(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Json(b): Json<WebhookBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_csrf(&a, &headers)?;
    if st.store.get_member(&a.scope, id).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    if !crate::auth::may_change_member(&a) {
        return Err(ApiError::forbidden(
            "Your account can view this member but not change its notifications.",
        ));
    }
    let https = b.url.starts_with("https://");
    if !(https || (st.config.webhook_allow_http && b.url.starts_with("http://")))
        || b.url.len() > 2048
    {
        return Err(ApiError::bad_request(
            "invalid_url",
            "A webhook must be an https:// URL.",
        ));
    }
    if st
        .store
        .list_webhooks(&a.scope, id)
        .await?
        .unwrap_or_default()
        .len()
        >= MAX_WEBHOOKS
    {
        return Err(ApiError::bad_request(
            "too_many_webhooks",
            format!("A member has at most {MAX_WEBHOOKS} webhooks; remove one first."),
        ));
    }
    let secret = crate::auth::random_token();
    let h = st
        .store
        .add_webhook(&a.scope, id, &b.url, &secret)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": h.id, "url": h.url, "secret": secret,
            "signature": "X-Watchhouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the secret>",
        })),
    ))
}

/// `DELETE /api/v1/members/{id}/webhooks/{hook}`.
pub async fn delete_webhook(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path((id, hook)): Path<(Id, Id)>,
) -> Result<StatusCode, ApiError> {
    require_csrf(&a, &headers)?;
    if st.store.get_member(&a.scope, id).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    if !crate::auth::may_change_member(&a) {
        return Err(ApiError::forbidden(
            "Your account can view this member but not change its notifications.",
        ));
    }
    if st.store.delete_webhook(&a.scope, id, hook).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_collectors_must_be_normalised() {
        let now = 1_763_700_000_000;
        let mut e: Event = serde_json::from_value(json!({
            "time_ms": now, "last_ms": now, "action": "allow", "protocol": 6,
            "src_ip": "192.168.1.5", "dst_ip": "203.0.113.80", "direction": "outbound",
            "format": "suricata", "raw": "x", "host": "c2.evil.example",
            "url": "http://c2.evil.example/gate.php"
        }))
        .unwrap();
        assert_eq!(check_event(&e, now, 86_400_000, 1000), Ok(()));
        e.host = Some("C2.EVIL.example".into());
        assert_eq!(check_event(&e, now, 86_400_000, 1000), Err("bad_host"));
        e.host = Some("c2.evil.example".into());
        e.url = Some("javascript:alert(1)".into());
        assert_eq!(check_event(&e, now, 86_400_000, 1000), Err("bad_url"));
    }

    #[test]
    fn decoded_bodies_are_sized_from_their_declaration_within_bounds() {
        use std::io::Write;
        let json: Vec<u8> = (0..5_000u64)
            .flat_map(|i| {
                format!("{{\"n\":{}}},", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).into_bytes()
            })
            .collect();
        let z = zstd::bulk::compress(&json, 3).unwrap();
        assert_eq!(decoded_size_hint("zstd", &z), json.len());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&json).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decoded_size_hint("gzip", &gz), json.len());
        // A short body declaring 4 GiB: no more than deflate's ratio allows.
        let liar = [0x1f, 0x8b, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decoded_size_hint("gzip", &liar), 8 * 1032);
        // Nothing declared: a guess; never beyond the bound.
        assert_eq!(decoded_size_hint("zstd", b"not zstd"), 32);
        assert_eq!(decoded_size_hint("gzip", &[]), 0);
        let huge = vec![0u8; 20 << 20];
        assert_eq!(
            decoded_size_hint("zstd", &huge),
            MAX_DECOMPRESSED_BYTES as usize + 1
        );
    }
}
