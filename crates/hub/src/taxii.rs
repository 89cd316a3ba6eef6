//! A TAXII 2.1 server at `/taxii2/` (OASIS TAXII 2.1, sections 4–5): discovery, one API root,
//! two collections — `indicators` (what Watchhouse shares, read-only) and `submissions` (where
//! partners add objects, write-only) — objects with `added_after`, `limit`/`next`,
//! `match[id|type|version|spec_version]`, single objects, versions, the manifest, and status.
//!
//! Authentication: HTTP Basic (email and password) or a bearer token. Partners, analysts and
//! administrators only; what each sees is capped by [`crate::share::ceiling`].

use std::collections::HashMap;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use watchhouse_intel::formats::{self, Report};
use watchhouse_intel::Tlp;
use watchhouse_store::{Role, TaxiiObject};

use crate::intel::{SourceInput, SourcedIndicator, PARTNER_FEED};
use crate::share::{self, StixItem};
use crate::tls::ClientAddr;
use crate::AppState;

/// TAXII media type.
pub const TAXII_TYPE: &str = "application/taxii+json;version=2.1";
/// STIX media type.
pub const STIX_TYPE: &str = "application/stix+json;version=2.1";
/// Id of the read-only collection of shared intelligence.
pub const INDICATORS_ID: &str = "6c1f3b8e-2a4d-4f6b-9e1d-3a5c7b9d0e21";
/// Id of the write-only collection partners add to.
pub const SUBMISSIONS_ID: &str = "b7e4d2a1-5c3f-4e8b-a6d9-0f1e2c3b4a59";
/// Largest request body accepted by `POST …/objects/`.
pub const MAX_CONTENT_LENGTH: usize = 10 * 1024 * 1024;
/// Most objects per page.
pub const MAX_PAGE: usize = 1000;

/// A TAXII error: the error message resource, with the TAXII media type.
#[derive(Debug)]
pub struct TaxiiError {
    status: StatusCode,
    title: String,
    description: String,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &str, description: impl Into<String>) -> TaxiiError {
        TaxiiError {
            status,
            title: title.into(),
            description: description.into(),
        }
    }
}

impl From<crate::error::ApiError> for TaxiiError {
    fn from(e: crate::error::ApiError) -> TaxiiError {
        TaxiiError::new(
            e.status,
            e.status.canonical_reason().unwrap_or("Error"),
            e.message,
        )
    }
}

impl From<watchhouse_store::StoreError> for TaxiiError {
    fn from(e: watchhouse_store::StoreError) -> TaxiiError {
        crate::error::ApiError::from(e).into()
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_TYPE));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Watchhouse TAXII\""),
            );
        }
        r
    }
}

type TResult = Result<Response, TaxiiError>;

fn taxii(status: StatusCode, body: Value, extra: &[(&'static str, String)]) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_TYPE));
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// A signed-in TAXII client and what it may see.
pub struct Client {
    user: watchhouse_store::User,
    ceiling: Tlp,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = TaxiiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, TaxiiError> {
        // Content negotiation first: a client that cannot read TAXII gets 406.
        if let Some(a) = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
        {
            let ok = a.split(',').any(|t| {
                let t = t.trim().to_ascii_lowercase().replace(' ', "");
                t.starts_with("application/taxii+json")
                    && (!t.contains("version=") || t.contains("version=2.1"))
                    || t.starts_with("*/*")
                    || t.starts_with("application/*")
            });
            if !ok {
                return Err(TaxiiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "Not Acceptable",
                    format!("This server speaks {TAXII_TYPE}."),
                ));
            }
        }
        let ConnectInfo(ClientAddr(peer)) =
            ConnectInfo::<ClientAddr>::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    TaxiiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Error",
                        "no peer address",
                    )
                })?;
        let who = crate::auth::machine_user(parts, state, &peer.ip().to_string())
            .await?
            .ok_or_else(|| {
                TaxiiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "Sign in with HTTP Basic (email and password) or `Authorization: Bearer <token>`.",
                )
            })?;
        let ceiling = share::ceiling(&who.user).ok_or_else(|| {
            TaxiiError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This account may not use the sharing service; it is for partners and analysts.",
            )
        })?;
        Ok(Client {
            user: who.user,
            ceiling,
        })
    }
}

fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = if state.config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// `GET /taxii2/`: discovery.
pub async fn discovery(State(st): State<AppState>, _c: Client, headers: HeaderMap) -> TResult {
    let root = format!("{}/taxii2/api/", base_url(&st, &headers));
    Ok(taxii(
        StatusCode::OK,
        json!({
            "title": "Watchhouse threat intelligence",
            "description": "Indicators and aggregated sightings shared by a Watchhouse hub.",
            "default": root,
            "api_roots": [root],
        }),
        &[],
    ))
}

/// `GET /taxii2/api/`: the API root.
pub async fn api_root(_c: Client) -> TResult {
    Ok(taxii(
        StatusCode::OK,
        json!({
            "title": "Watchhouse",
            "description": "Shared indicators (read) and partner submissions (write).",
            "versions": [TAXII_TYPE],
            "max_content_length": MAX_CONTENT_LENGTH,
        }),
        &[],
    ))
}

fn collection_json(id: &str, c: &Client) -> Option<Value> {
    let writer = matches!(c.user.role, Role::Partner | Role::Analyst | Role::Admin);
    match id {
        INDICATORS_ID => Some(json!({
            "id": INDICATORS_ID,
            "title": "Watchhouse indicators",
            "description": format!("Indicators Watchhouse shares and sources seen attacking several members, up to {}.", c.ceiling),
            "can_read": true, "can_write": false,
            "media_types": [STIX_TYPE],
        })),
        SUBMISSIONS_ID => Some(json!({
            "id": SUBMISSIONS_ID,
            "title": "Partner submissions",
            "description": "Add STIX 2.1 objects here; indicators are matched against members' traffic.",
            "can_read": false, "can_write": writer,
            "media_types": [STIX_TYPE],
        })),
        _ => None,
    }
}

/// `GET /taxii2/api/collections/`.
pub async fn collections(c: Client) -> TResult {
    let v: Vec<Value> = [INDICATORS_ID, SUBMISSIONS_ID]
        .iter()
        .filter_map(|id| collection_json(id, &c))
        .collect();
    Ok(taxii(StatusCode::OK, json!({ "collections": v }), &[]))
}

/// `GET /taxii2/api/collections/{id}/`.
pub async fn collection(c: Client, Path(id): Path<String>) -> TResult {
    collection_json(&id, &c)
        .map(|v| taxii(StatusCode::OK, v, &[]))
        .ok_or_else(|| not_found("collection"))
}

fn not_found(what: &str) -> TaxiiError {
    TaxiiError::new(
        StatusCode::NOT_FOUND,
        "Not Found",
        format!("No such {what}."),
    )
}

fn readable(id: &str) -> Result<(), TaxiiError> {
    match id {
        INDICATORS_ID => Ok(()),
        SUBMISSIONS_ID => Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This collection can be written to but not read.",
        )),
        _ => Err(not_found("collection")),
    }
}

/// The filters of the objects, manifest and versions endpoints.
struct Filter {
    added_after: Option<i64>,
    limit: usize,
    next: Option<(i64, String)>,
    ids: Option<Vec<String>>,
    types: Option<Vec<String>>,
    versions: Vec<String>,
    spec_ok: bool,
}

fn filter(q: &HashMap<String, String>) -> Result<Filter, TaxiiError> {
    let bad = |m: String| TaxiiError::new(StatusCode::BAD_REQUEST, "Bad Request", m);
    let list = |k: &str| {
        q.get(k).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
    };
    let added_after = match q.get("added_after") {
        Some(t) => Some(
            watchhouse_intel::stix::parse_timestamp(t)
                .ok_or_else(|| bad(format!("added_after `{t}` is not a timestamp")))?,
        ),
        None => None,
    };
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(format!("limit `{l}` is not a positive number")))?
            .min(MAX_PAGE),
        None => MAX_PAGE,
    };
    let next = match q.get("next") {
        Some(n) => {
            let (ms, id) = n
                .split_once('_')
                .ok_or_else(|| bad("next is not a token this server gave".into()))?;
            Some((
                ms.parse()
                    .map_err(|_| bad("next is not a token this server gave".into()))?,
                id.to_owned(),
            ))
        }
        None => None,
    };
    let spec_ok = list("match[spec_version]").is_none_or(|v| v.iter().any(|s| s == "2.1"));
    Ok(Filter {
        added_after,
        limit,
        next,
        ids: list("match[id]"),
        types: list("match[type]"),
        versions: list("match[version]").unwrap_or_else(|| vec!["last".into()]),
        spec_ok,
    })
}

/// Applies the filters; returns the page and whether more follow.
fn select<'a>(
    items: &'a [StixItem],
    f: &Filter,
    object_id: Option<&str>,
) -> (Vec<&'a StixItem>, bool) {
    if !f.spec_ok {
        return (Vec::new(), false);
    }
    let matching = items.iter().filter(|o| {
        object_id.is_none_or(|id| o.id == id)
            && f.ids.as_ref().is_none_or(|ids| ids.contains(&o.id))
            && f.types.as_ref().is_none_or(|t| t.contains(&o.ty))
            && f.added_after.is_none_or(|a| o.added_ms > a)
            && f.next.as_ref().is_none_or(|(ms, id)| (o.added_ms, o.id.as_str()) > (*ms, id.as_str()))
            // Each object has one version here, so first, last and all select it; a timestamp
            // selects it when it is that version.
            && f.versions.iter().any(|v| matches!(v.as_str(), "first" | "last" | "all") || *v == o.version)
    });
    let mut page: Vec<&StixItem> = matching.take(f.limit + 1).collect();
    let more = page.len() > f.limit;
    page.truncate(f.limit);
    (page, more)
}

fn page_headers(page: &[&StixItem]) -> Vec<(&'static str, String)> {
    match (page.first(), page.last()) {
        (Some(a), Some(b)) => vec![
            (
                "x-taxii-date-added-first",
                watchhouse_intel::stix::timestamp(a.added_ms),
            ),
            (
                "x-taxii-date-added-last",
                watchhouse_intel::stix::timestamp(b.added_ms),
            ),
        ],
        _ => vec![],
    }
}

fn envelope(page: &[&StixItem], more: bool, key: &str, f: impl Fn(&StixItem) -> Value) -> Value {
    let mut v = json!({ "more": more });
    if more {
        if let Some(l) = page.last() {
            v["next"] = json!(format!("{}_{}", l.added_ms, l.id));
        }
    }
    if !page.is_empty() {
        v[key] = Value::Array(page.iter().map(|o| f(o)).collect());
    }
    v
}

/// `GET …/collections/{id}/objects/`.
pub async fn objects(
    State(st): State<AppState>,
    c: Client,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> TResult {
    readable(&id)?;
    let f = filter(&q)?;
    let items = share::objects(&st, c.ceiling).await?;
    let (page, more) = select(&items, &f, None);
    let body = envelope(&page, more, "objects", |o| o.obj.clone());
    Ok(taxii(StatusCode::OK, body, &page_headers(&page)))
}

/// `GET …/collections/{id}/objects/{object_id}/`.
pub async fn object(
    State(st): State<AppState>,
    c: Client,
    Path((id, object_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> TResult {
    readable(&id)?;
    let f = filter(&q)?;
    let items = share::objects(&st, c.ceiling).await?;
    if !items.iter().any(|o| o.id == object_id) {
        return Err(not_found("object"));
    }
    let (page, more) = select(&items, &f, Some(&object_id));
    let body = envelope(&page, more, "objects", |o| o.obj.clone());
    Ok(taxii(StatusCode::OK, body, &page_headers(&page)))
}

/// `GET …/collections/{id}/objects/{object_id}/versions/`.
pub async fn versions(
    State(st): State<AppState>,
    c: Client,
    Path((id, object_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> TResult {
    readable(&id)?;
    let mut f = filter(&q)?;
    f.versions = vec!["all".into()];
    let items = share::objects(&st, c.ceiling).await?;
    let (page, more) = select(&items, &f, Some(&object_id));
    if page.is_empty() && !items.iter().any(|o| o.id == object_id) {
        return Err(not_found("object"));
    }
    let body = json!({
        "more": more,
        "versions": page.iter().map(|o| o.version.clone()).collect::<Vec<_>>(),
    });
    Ok(taxii(StatusCode::OK, body, &page_headers(&page)))
}

/// `GET …/collections/{id}/manifest/`.
pub async fn manifest(
    State(st): State<AppState>,
    c: Client,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> TResult {
    readable(&id)?;
    let f = filter(&q)?;
    let items = share::objects(&st, c.ceiling).await?;
    let (page, more) = select(&items, &f, None);
    let body = envelope(&page, more, "objects", |o| {
        json!({
            "id": o.id,
            "date_added": watchhouse_intel::stix::timestamp(o.added_ms),
            "version": o.version,
            "media_type": STIX_TYPE,
        })
    });
    Ok(taxii(StatusCode::OK, body, &page_headers(&page)))
}

fn check_object(o: &Value) -> Result<(String, String), String> {
    let ty = o.get("type").and_then(Value::as_str).ok_or("no `type`")?;
    let id = o.get("id").and_then(Value::as_str).ok_or("no `id`")?;
    let (prefix, u) = id.split_once("--").ok_or("`id` is not type--uuid")?;
    if prefix != ty || uuid::Uuid::parse_str(u).is_err() {
        return Err("`id` is not `<type>--<uuid>`".into());
    }
    if ty.len() > 250
        || !ty
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("`type` is not a STIX type name".into());
    }
    if o.get("spec_version").and_then(Value::as_str) != Some("2.1") && ty != "marking-definition" {
        return Err("`spec_version` must be 2.1".into());
    }
    let version = o
        .get("modified")
        .or_else(|| o.get("created"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version = match version {
        Some(v) if watchhouse_intel::stix::parse_timestamp(&v).is_some() => v,
        Some(_) => return Err("`modified` is not a timestamp".into()),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    };
    if ty == "indicator" {
        let p = o
            .get("pattern")
            .and_then(Value::as_str)
            .ok_or("indicator without `pattern`")?;
        if o.get("pattern_type").and_then(Value::as_str) == Some("stix") {
            watchhouse_intel::stix::parse_pattern(p)
                .map_err(|e| format!("pattern not usable: {e}"))?;
        }
    }
    Ok((id.to_owned(), version))
}

/// `POST …/collections/{id}/objects/`: adds objects and answers with a status resource.
pub async fn add_objects(
    State(st): State<AppState>,
    c: Client,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> TResult {
    match id.as_str() {
        SUBMISSIONS_ID => {}
        INDICATORS_ID => {
            return Err(TaxiiError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This collection is read-only.",
            ))
        }
        _ => return Err(not_found("collection")),
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
        .replace(' ', "");
    if !ct.starts_with("application/taxii+json") {
        return Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            format!("Send an envelope as {TAXII_TYPE}."),
        ));
    }
    let env: Value = serde_json::from_slice(&body).map_err(|e| {
        TaxiiError::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            format!("not a JSON envelope: {e}"),
        )
    })?;
    let objs = env
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            TaxiiError::new(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "the envelope has no `objects` list",
            )
        })?;
    let now = crate::now_ms();
    let (mut successes, mut failures) = (Vec::new(), Vec::new());
    for o in objs {
        match check_object(o) {
            Ok((oid, version)) => {
                let rec = TaxiiObject {
                    id: oid.clone(),
                    version: version.clone(),
                    added_ms: now,
                    json: o.to_string(),
                };
                st.store.add_taxii_object(SUBMISSIONS_ID, rec, c.user.id).await?;
                successes.push(json!({"id": oid, "version": version}));
            }
            Err(m) => failures.push(json!({
                "id": o.get("id").and_then(Value::as_str).unwrap_or("").chars().take(300).collect::<String>(),
                "version": o.get("modified").and_then(Value::as_str).unwrap_or("").chars().take(64).collect::<String>(),
                "message": m,
            })),
        }
    }
    let status_id = uuid::Uuid::new_v4().to_string();
    let status = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": watchhouse_intel::stix::timestamp(now),
        "total_count": objs.len(),
        "success_count": successes.len(),
        "successes": successes,
        "failure_count": failures.len(),
        "failures": failures,
        "pending_count": 0,
        "pendings": [],
    });
    st.store
        .put_taxii_status(&status_id, c.user.id, &status.to_string())
        .await?;
    if status["success_count"].as_u64().unwrap_or(0) > 0 {
        st.request_intel_rebuild();
    }
    tracing::info!(user = %c.user.email, total = objs.len(), ok = status["success_count"].as_u64(), "TAXII objects added");
    Ok(taxii(StatusCode::ACCEPTED, status, &[]))
}

/// `GET /taxii2/api/status/{id}/`: only the account that made the request may read it.
pub async fn status(State(st): State<AppState>, c: Client, Path(id): Path<String>) -> TResult {
    match st.store.taxii_status(&id, c.user.id).await? {
        Some(j) => {
            let v: Value = serde_json::from_str(&j).unwrap_or(Value::Null);
            Ok(taxii(StatusCode::OK, v, &[]))
        }
        None => Err(not_found("status")),
    }
}

/// Partners' submitted indicators as an intelligence source (matched, never re-shared or put in
/// blocklists; unmarked objects are treated as TLP:AMBER).
pub async fn partner_source(st: &AppState) -> Result<SourceInput, watchhouse_store::StoreError> {
    let rows = st.store.taxii_objects(SUBMISSIONS_ID, -1, 200_000).await?;
    let values: Vec<Value> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.json).ok())
        .collect();
    let mut inds = Vec::new();
    let mut rep = Report::default();
    formats::stix_objects(&values, &mut inds, &mut rep);
    let changed_ms = rows.iter().map(|r| r.added_ms).max().unwrap_or(0);
    Ok(SourceInput {
        name: PARTNER_FEED.into(),
        provenance: "TAXII partners".into(),
        category: "attacks".into(),
        confidence: 50,
        tlp: Tlp::Amber,
        share: false,
        blocklist: false,
        changed_ms,
        indicators: std::sync::Arc::new(
            inds.into_iter()
                .map(|i| SourcedIndicator::from_feed(i, changed_ms))
                .collect(),
        ),
    })
}
