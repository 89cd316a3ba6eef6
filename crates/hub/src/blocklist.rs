//! Firewall-ready blocklists for members, and the intelligence API for analysts.
//!
//! A member's blocklist is: addresses from feeds marked `blocklist = true` and from analysts
//! (TLP at most AMBER, unexpired), plus the national list of sources seen attacking several
//! members; minus the member's own networks, private ranges and the member's exclusions; with
//! blocks inside other blocks folded away so every firewall accepts it. Rendered as plain text,
//! an nftables script, `ipset restore` input, a pf table file, a MikroTik script, and FortiGate /
//! Palo Alto external lists.

use std::net::IpAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use watchhouse_intel::{is_non_internet, Cidr, IndicatorValue, NetSet, Tlp};
use watchhouse_store::{Id, NewIndicator, Role, Scope};

use crate::auth::{Authed, MachineAuthed};
use crate::error::ApiError;
use crate::tls::ClientAddr;
use crate::AppState;

/// The blocklist formats.
pub const FORMATS: &[(&str, &str)] = &[
    ("txt", "Plain text, one address or block per line"),
    ("nft", "nftables script (nft -f)"),
    ("ipset", "ipset restore input"),
    ("pf", "pf table file (pfctl -t watchhouse -T replace -f)"),
    ("mikrotik", "MikroTik RouterOS script (/import)"),
    ("fortigate", "FortiGate external threat feed (IP address)"),
    ("panos", "Palo Alto Networks external dynamic list (IP)"),
];

/// One line of a blocklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address or block.
    pub cidr: Cidr,
    /// Why: feeds, or `national`.
    pub why: String,
    /// Expiry, ms.
    pub valid_until_ms: Option<i64>,
}

/// Machine or browser client, rejected with a JSON error.
pub struct Caller(pub MachineAuthed);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let ip = ConnectInfo::<ClientAddr>::from_request_parts(parts, state)
            .await
            .map(|ConnectInfo(ClientAddr(a))| a.ip().to_string())
            .unwrap_or_default();
        crate::auth::machine_user(parts, state, &ip)
            .await?
            .map(Caller)
            .ok_or_else(|| {
                ApiError::unauthorised(
                    "not_signed_in",
                    "Sign in, or send HTTP Basic credentials or `Authorization: Bearer <token>`.",
                )
            })
    }
}

/// Drops entries contained in another entry (firewalls refuse overlapping intervals).
pub fn fold(mut v: Vec<Entry>) -> Vec<Entry> {
    v.sort_by_key(|e| (e.cidr.addr().is_ipv6(), e.cidr.prefix_len(), e.cidr.addr()));
    let mut kept: Vec<Entry> = Vec::with_capacity(v.len());
    let mut sets: std::collections::BTreeMap<u8, std::collections::HashSet<Cidr>> =
        Default::default();
    for e in v {
        let covered = sets.iter().any(|(len, s)| {
            *len <= e.cidr.prefix_len()
                && Cidr::new(e.cidr.addr(), *len).is_ok_and(|c| s.contains(&c))
        });
        if !covered {
            sets.entry(e.cidr.prefix_len()).or_default().insert(e.cidr);
            kept.push(e);
        }
    }
    kept.sort_by_key(|e| (e.cidr.addr().is_ipv6(), e.cidr.addr(), e.cidr.prefix_len()));
    kept
}

/// The entries of a member's blocklist at `now_ms`.
pub async fn entries(
    st: &AppState,
    scope: &Scope,
    member_id: Id,
    now_ms: i64,
) -> Result<Vec<Entry>, ApiError> {
    let member = st
        .store
        .get_member(scope, member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let exclusions = st
        .store
        .list_exclusions(scope, member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let mut own: Vec<Cidr> = member
        .networks
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    own.extend(
        exclusions
            .iter()
            .filter_map(|e| e.cidr.parse::<Cidr>().ok()),
    );
    let keep_out = NetSet::new(own);
    let overlaps = |c: &Cidr| {
        keep_out.contains(c.addr()) || keep_out.cidrs().iter().any(|k| c.contains(k.addr()))
    };
    let intel = st.intel();
    let mut v: Vec<Entry> = intel
        .blocklist
        .iter()
        .filter(|b| b.tlp <= Tlp::Amber && b.valid_until_ms.is_none_or(|t| t > now_ms))
        .filter(|b| !is_non_internet(b.cidr.addr()) && !overlaps(&b.cidr))
        .map(|b| Entry {
            cidr: b.cidr,
            why: b.sources.join(","),
            valid_until_ms: b.valid_until_ms,
        })
        .collect();
    let since = watchhouse_store::day_of(now_ms) - st.config.national_days as i64;
    for s in st
        .store
        .widespread_sources(since, st.config.national_min_members, 100_000)
        .await?
    {
        let c = Cidr::host(s.ip);
        if !overlaps(&c) && !is_non_internet(s.ip) {
            v.push(Entry {
                cidr: c,
                why: format!("national (seen by {} members)", s.members),
                // Entries from the national list lapse a window after they were last seen.
                valid_until_ms: Some(
                    (s.last_day + 1 + st.config.national_days as i64) * 86_400_000,
                ),
            });
        }
    }
    Ok(fold(v))
}

/// Renders a blocklist. Pure.
pub fn render(format: &str, v: &[Entry], now_ms: i64) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::with_capacity(v.len() * 24 + 256);
    let stamp = watchhouse_intel::stix::timestamp(now_ms);
    let (v4, v6): (Vec<&Entry>, Vec<&Entry>) = v.iter().partition(|e| e.cidr.addr().is_ipv4());
    match format {
        "txt" => {
            let _ = writeln!(
                out,
                "# Watchhouse blocklist, generated {stamp}, {} entries",
                v.len()
            );
            for e in v {
                let _ = writeln!(out, "{}", e.cidr);
            }
        }
        "fortigate" | "panos" => {
            for e in v {
                let _ = writeln!(out, "{}", e.cidr);
            }
        }
        "pf" => {
            let _ = writeln!(out, "# Watchhouse blocklist, generated {stamp}; load with: pfctl -t watchhouse -T replace -f <this file>");
            for e in v {
                let _ = writeln!(out, "{}", e.cidr);
            }
        }
        "nft" => {
            let _ = writeln!(
                out,
                "# Watchhouse blocklist, generated {stamp}; load with: nft -f <this file>"
            );
            let _ = writeln!(out, "table inet watchhouse {{}}\ndelete table inet watchhouse\ntable inet watchhouse {{");
            for (name, ty, set) in [
                ("blocklist_v4", "ipv4_addr", &v4),
                ("blocklist_v6", "ipv6_addr", &v6),
            ] {
                let _ = writeln!(out, "\tset {name} {{\n\t\ttype {ty}\n\t\tflags interval");
                if !set.is_empty() {
                    let items: Vec<String> = set.iter().map(|e| e.cidr.to_string()).collect();
                    let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(", "));
                }
                let _ = writeln!(out, "\t}}");
            }
            let _ = writeln!(
                out,
                "\tchain input {{\n\t\ttype filter hook input priority -10; policy accept;\n\t\tip saddr @blocklist_v4 drop\n\t\tip6 saddr @blocklist_v6 drop\n\t}}\n\tchain forward {{\n\t\ttype filter hook forward priority -10; policy accept;\n\t\tip saddr @blocklist_v4 drop\n\t\tip6 saddr @blocklist_v6 drop\n\t\tip daddr @blocklist_v4 drop\n\t\tip6 daddr @blocklist_v6 drop\n\t}}\n}}"
            );
        }
        "ipset" => {
            for (name, family, set) in [
                ("watchhouse-v4", "inet", &v4),
                ("watchhouse-v6", "inet6", &v6),
            ] {
                let _ = writeln!(
                    out,
                    "create {name} hash:net family {family} hashsize 1024 maxelem {} -exist\nflush {name}",
                    (set.len() + 1024).next_power_of_two()
                );
                for e in set.iter() {
                    let _ = writeln!(out, "add {name} {}", e.cidr);
                }
            }
        }
        "mikrotik" => {
            let _ = writeln!(out, "# Watchhouse blocklist, generated {stamp}; load with: /import file-name=<this file>");
            for (path, set) in [
                ("/ip firewall address-list", &v4),
                ("/ipv6 firewall address-list", &v6),
            ] {
                let _ = writeln!(out, "{path} remove [find list=watchhouse]");
                for e in set.iter() {
                    let comment: String = e
                        .why
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || " ,()_-".contains(*c))
                        .take(60)
                        .collect();
                    let timeout = e
                        .valid_until_ms
                        .map(|t| format!(" timeout={}s", ((t - now_ms) / 1000).max(60)))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{path} add list=watchhouse address={} comment=\"{comment}\"{timeout}",
                        e.cidr
                    );
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// `GET /api/v1/members/{id}/blocklist/{format}`.
pub async fn blocklist(
    State(st): State<AppState>,
    Caller(c): Caller,
    Path((id, format)): Path<(Id, String)>,
) -> Result<Response, ApiError> {
    if c.user.role == Role::Partner {
        return Err(ApiError::not_found("member"));
    }
    let now = crate::now_ms();
    let v = entries(&st, &c.scope, id, now).await?;
    let body = render(&format, &v, now).ok_or_else(|| {
        ApiError::not_found(&format!(
            "blocklist format; use one of {}",
            FORMATS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// Most exclusions per member.
pub const MAX_EXCLUSIONS: usize = 1_000;

/// A new exclusion.
#[derive(Debug, Deserialize)]
pub struct ExclusionBody {
    /// Address or block.
    pub cidr: String,
    /// Why.
    #[serde(default)]
    pub note: String,
}

/// `GET /api/v1/members/{id}/blocklist-exclusions`.
pub async fn list_exclusions(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
) -> Result<Json<Value>, ApiError> {
    let v = st
        .store
        .list_exclusions(&a.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(json!({ "exclusions": v })))
}

/// `POST /api/v1/members/{id}/blocklist-exclusions`.
pub async fn add_exclusion(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Json(b): Json<ExclusionBody>,
) -> Result<Json<Value>, ApiError> {
    crate::api::require_csrf(&a, &headers)?;
    let cidr: Cidr = b.cidr.parse().map_err(|e: watchhouse_intel::CidrError| {
        ApiError::bad_request("invalid_cidr", e.to_string())
    })?;
    if b.note.len() > 500 {
        return Err(ApiError::bad_request(
            "invalid_note",
            "the note is longer than 500 characters",
        ));
    }
    if st.store.get_member(&a.scope, id).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    if !crate::auth::may_change_member(&a) {
        return Err(ApiError::forbidden(
            "Your account can view this member but not change its blocklist.",
        ));
    }
    if !st
        .store
        .add_exclusion(&a.scope, id, &cidr.to_string(), &b.note)
        .await?
    {
        return Err(ApiError::not_found("member"));
    }
    Ok(Json(json!({ "cidr": cidr.to_string(), "note": b.note })))
}

/// `DELETE /api/v1/members/{id}/blocklist-exclusions/{cidr}` (the `/` of a block written `_`).
pub async fn delete_exclusion(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path((id, cidr)): Path<(Id, String)>,
) -> Result<StatusCode, ApiError> {
    crate::api::require_csrf(&a, &headers)?;
    if st.store.get_member(&a.scope, id).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    if !crate::auth::may_change_member(&a) {
        return Err(ApiError::forbidden(
            "Your account can view this member but not change its blocklist.",
        ));
    }
    let cidr = cidr.replace('_', "/");
    if st.store.delete_exclusion(&a.scope, id, &cidr).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("exclusion"))
    }
}

fn analyst(a: &Authed) -> Result<(), ApiError> {
    match a.session.user.role {
        Role::Analyst | Role::Admin => Ok(()),
        _ => Err(ApiError::forbidden(
            "Only analysts and administrators manage intelligence.",
        )),
    }
}

/// `GET /api/v1/intel/feeds`: feed status (analysts and administrators).
pub async fn feeds(State(st): State<AppState>, a: Authed) -> Result<Json<Value>, ApiError> {
    analyst(&a)?;
    Ok(Json(
        json!({ "feeds": st.feed_views(), "entries": st.intel().matcher.len() }),
    ))
}

fn admin_only(a: &Authed) -> Result<(), ApiError> {
    match a.session.user.role {
        Role::Admin => Ok(()),
        _ => Err(ApiError::forbidden(
            "Only administrators add and remove feeds.",
        )),
    }
}

/// Checks and stores a feed added in the UI or API; shared by the API and the form. Only
/// `http(s)://` sources: a local path would let the web UI read the hub's own files.
pub async fn create_feed(st: &AppState, a: &Authed, c: crate::FeedConfig) -> Result<(), ApiError> {
    admin_only(a)?;
    if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
        return Err(ApiError::bad_request(
            "invalid_url",
            "Feeds added here must be fetched over https:// (or http://). Local files go in the configuration file.",
        ));
    }
    let mut all = st.config.feeds.clone();
    all.extend(crate::intel::feeds::ui_feeds(st).await);
    all.push(c.clone());
    crate::intel::feeds::validate(&all).map_err(|e| ApiError::bad_request("invalid_feed", e))?;
    let j = serde_json::to_string(&c).map_err(ApiError::internal)?;
    st.store
        .add_feed_config(&c.name, &j, &a.session.user.email)
        .await?;
    tracing::info!(user = %a.session.user.email, feed = %c.name, url = %crate::intel::feeds::redact(&c.url), "feed added");
    st.request_intel_rebuild();
    Ok(())
}

/// `POST /api/v1/intel/feeds` (administrators): body as a `[[hub.feeds]]` entry.
pub async fn add_feed(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Json(c): Json<crate::FeedConfig>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::api::require_csrf(&a, &headers)?;
    create_feed(&st, &a, c.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": c.name, "url": crate::intel::feeds::redact(&c.url)})),
    ))
}

/// Removes a feed added in the UI or API; shared by the API and the form.
pub async fn remove_feed(st: &AppState, a: &Authed, name: &str) -> Result<(), ApiError> {
    admin_only(a)?;
    if st.config.feeds.iter().any(|f| f.name == name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "configured_feed",
            "This feed is defined in the configuration file; remove it there.",
        ));
    }
    if !st.store.delete_feed_config(name).await? {
        return Err(ApiError::not_found("feed"));
    }
    tracing::info!(user = %a.session.user.email, feed = %name, "feed removed");
    st.request_intel_rebuild();
    Ok(())
}

/// `DELETE /api/v1/intel/feeds/{name}` (administrators; feeds added in the UI or API).
pub async fn delete_feed(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::api::require_csrf(&a, &headers)?;
    remove_feed(&st, &a, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/intel/indicators`.
pub async fn list_indicators(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Value>, ApiError> {
    analyst(&a)?;
    Ok(Json(
        json!({ "indicators": st.store.list_indicators(true).await? }),
    ))
}

/// A new analyst indicator.
#[derive(Debug, Deserialize)]
pub struct IndicatorBody {
    /// Address, block, domain or URL.
    pub value: String,
    /// Category (default `attacks`).
    #[serde(default)]
    pub category: String,
    /// 0–100 (default 70).
    pub confidence: Option<u8>,
    /// TLP name (default `amber`).
    #[serde(default)]
    pub tlp: String,
    /// Days until it expires (default 30; 0 = never).
    pub expires_days: Option<u32>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// Checks and stores an analyst indicator; shared by the API and the form.
pub async fn create_indicator(
    st: &AppState,
    a: &Authed,
    b: IndicatorBody,
) -> Result<watchhouse_store::StoredIndicator, ApiError> {
    analyst(a)?;
    let value =
        IndicatorValue::parse(&b.value).map_err(|e| ApiError::bad_request("invalid_value", e))?;
    if let IndicatorValue::Ip(c) = &value {
        if is_non_internet(c.addr()) {
            return Err(ApiError::bad_request(
                "invalid_value",
                "private, loopback and other non-internet addresses cannot be indicators",
            ));
        }
    }
    let tlp = if b.tlp.is_empty() {
        Tlp::Amber
    } else {
        Tlp::from_name(&b.tlp).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_tlp",
                "tlp must be clear, green, amber, amber_strict or red",
            )
        })?
    };
    let category = if b.category.trim().is_empty() {
        "attacks".to_owned()
    } else {
        b.category.trim().to_owned()
    };
    if category.len() > 64
        || !category
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return Err(ApiError::bad_request(
            "invalid_category",
            "category: up to 64 letters, digits, - and _",
        ));
    }
    let confidence = b.confidence.unwrap_or(70);
    if confidence > 100 {
        return Err(ApiError::bad_request(
            "invalid_confidence",
            "confidence is 0–100",
        ));
    }
    let now = crate::now_ms();
    let days = b.expires_days.unwrap_or(30);
    let stored = st
        .store
        .add_indicator(NewIndicator {
            value,
            category,
            confidence,
            tlp,
            valid_until_ms: (days > 0).then(|| now + days as i64 * 86_400_000),
            description: b.description.chars().take(2000).collect(),
            created_by: a.session.user.email.clone(),
        })
        .await?;
    tracing::info!(user = %a.session.user.email, value = %stored.value, tlp = %stored.tlp, "analyst indicator added");
    st.request_intel_rebuild();
    Ok(stored)
}

/// `POST /api/v1/intel/indicators`.
pub async fn add_indicator(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Json(b): Json<IndicatorBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::api::require_csrf(&a, &headers)?;
    let stored = create_indicator(&st, &a, b).await?;
    Ok((StatusCode::CREATED, Json(json!(stored))))
}

/// `DELETE /api/v1/intel/indicators/{id}`: revokes it.
pub async fn revoke_indicator(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    crate::api::require_csrf(&a, &headers)?;
    analyst(&a)?;
    if st.store.revoke_indicator(id, crate::now_ms()).await? {
        st.request_intel_rebuild();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("indicator"))
    }
}

/// `GET /api/v1/intel/check/{value}`: what the hub's matcher says about a value (analysts).
pub async fn check(
    State(st): State<AppState>,
    a: Authed,
    Path(v): Path<String>,
) -> Result<Json<Value>, ApiError> {
    analyst(&a)?;
    let value = IndicatorValue::parse(&v).map_err(|e| ApiError::bad_request("invalid_value", e))?;
    let intel = st.intel();
    let m = &intel.matcher;
    let labels: Vec<Value> = m
        .lookup_value(&value)
        .map(|hit| {
            hit.labels()
                .iter()
                .map(|l| json!({"feed": m.feed(l.feed).name, "category": m.category(*l), "confidence": l.confidence, "tlp": l.tlp}))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(
        json!({ "value": value.to_string(), "listed": !labels.is_empty(), "labels": labels }),
    ))
}

/// `GET /api/v1/intel/export/stix`: a STIX 2.1 bundle within the caller's TLP ceiling.
pub async fn export_stix(
    State(st): State<AppState>,
    Caller(c): Caller,
) -> Result<Response, ApiError> {
    let ceiling = crate::share::ceiling(&c.user).ok_or_else(|| {
        ApiError::forbidden("Only partners and analysts receive shared intelligence.")
    })?;
    let b = crate::share::bundle(&st, ceiling).await?;
    let mut r = (StatusCode::OK, b.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::taxii::STIX_TYPE),
    );
    Ok(r)
}

/// `GET /api/v1/intel/export/misp/{file}`: a MISP feed (`manifest.json`, `hashes.csv`,
/// `<uuid>.json`) within the caller's TLP ceiling.
pub async fn export_misp(
    State(st): State<AppState>,
    Caller(c): Caller,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let ceiling = crate::share::ceiling(&c.user).ok_or_else(|| {
        ApiError::forbidden("Only partners and analysts receive shared intelligence.")
    })?;
    let files = crate::share::misp_feed(&st, ceiling).await?;
    let (_, body) = files
        .into_iter()
        .find(|(n, _)| *n == file)
        .ok_or_else(|| ApiError::not_found("MISP feed file"))?;
    let ct = if file.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// Is `ip` in a member's blocklist? For tests and the member page.
pub fn listed(v: &[Entry], ip: IpAddr) -> bool {
    v.iter().any(|e| e.cidr.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Entry {
        Entry {
            cidr: s.parse().unwrap(),
            why: "x".into(),
            valid_until_ms: Some(3_600_000),
        }
    }

    #[test]
    fn nested_entries_are_folded() {
        let v = fold(vec![
            e("198.51.100.7"),
            e("198.51.100.0/24"),
            e("203.0.113.9"),
            e("2001:db8::/32"),
            e("2001:db8::1"),
        ]);
        let s: Vec<String> = v.iter().map(|x| x.cidr.to_string()).collect();
        assert_eq!(s, vec!["198.51.100.0/24", "203.0.113.9", "2001:db8::/32"]);
    }

    #[test]
    fn every_format_renders_every_entry() {
        let v = fold(vec![
            e("198.51.100.0/24"),
            e("203.0.113.9"),
            e("2001:db8::/32"),
        ]);
        for (f, _) in FORMATS {
            let out = render(f, &v, 0).unwrap();
            for x in &v {
                assert!(out.contains(&x.cidr.to_string()), "{f}: {out}");
            }
        }
        assert!(render("exe", &v, 0).is_none());
        let m = render("mikrotik", &v, 0).unwrap();
        assert!(m.contains("timeout=3600s"), "{m}");
        let n = render("nft", &v, 0).unwrap();
        assert!(
            n.contains("elements = { 198.51.100.0/24, 203.0.113.9 }"),
            "{n}"
        );
    }
}
