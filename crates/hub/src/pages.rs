//! HTML handlers: sign-in, home, member overview, alert detail.

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use watchhouse_store::{day_of, AlertStatus, Id, Role};
use watchhouse_web::{self as web, Viewer};

use crate::api::update_status;
use crate::auth::{
    self, cookie, ct_eq, hash_secret, random_token, safe_next, set_cookie, Authed, PageAuthed,
    LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::error::ApiError;
use crate::tls::ClientAddr;
use crate::{now_ms, AppState};

/// Renders an error as a page with the right status.
pub fn error_response(viewer: Option<&Viewer<'_>>, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::FORBIDDEN => "You cannot do that",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Sorry, there is a problem with the service",
        _ => "There is a problem",
    };
    (
        e.status,
        Html(web::error_page(viewer, title, &e.message).into_string()),
    )
        .into_response()
}

fn viewer(a: &Authed) -> Viewer<'_> {
    Viewer {
        user: &a.session.user,
        csrf: &a.session.csrf,
    }
}

/// The error page for a form whose CSRF token is not this session's (`None` when it is).
fn stale_form(a: &Authed, csrf: &str) -> Option<Response> {
    (!ct_eq(csrf, &a.session.csrf)).then(|| {
        error_response(
            Some(&viewer(a)),
            ApiError::forbidden("That form had expired. Go back, reload the page and try again."),
        )
    })
}

/// `GET /static/app.css`.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        web::APP_CSS,
    )
}

/// `GET /static/favicon.svg` and `/favicon.ico`.
pub async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        web::FAVICON_SVG,
    )
}

/// Fallback: 404 page.
pub async fn not_found() -> Response {
    error_response(None, ApiError::not_found("page"))
}

/// `?next=` on the sign-in page.
#[derive(Debug, Deserialize)]
pub struct Next {
    /// Where to go after signing in.
    pub next: Option<String>,
}

/// `GET /login`.
pub async fn login_form(State(st): State<AppState>, Query(q): Query<Next>) -> Response {
    let csrf = random_token();
    let next = safe_next(q.next.as_deref().unwrap_or("/")).to_owned();
    (
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, st.secure_cookies),
        )],
        Html(web::login_page(&csrf, "", None, &next).into_string()),
    )
        .into_response()
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`.
pub async fn login(
    State(st): State<AppState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(&f.next).to_owned();
    let form_ok = cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| ct_eq(c, &f.csrf));
    let retry = |status: StatusCode, msg: &str, extra: Option<(header::HeaderName, String)>| {
        let csrf = random_token();
        let mut res = (
            status,
            [(
                header::SET_COOKIE,
                set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, st.secure_cookies),
            )],
            Html(web::login_page(&csrf, f.email.trim(), Some(msg), &next).into_string()),
        )
            .into_response();
        if let Some((k, v)) = extra {
            if let Ok(v) = v.parse() {
                res.headers_mut().insert(k, v);
            }
        }
        res
    };
    if !form_ok {
        return retry(
            StatusCode::BAD_REQUEST,
            "The sign-in form had expired. Please enter your details again.",
            None,
        );
    }
    let ip = peer.ip().to_string();
    if let Some(wait) = st.limiter.check(&f.email, &ip) {
        st.metrics
            .login_throttled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(peer = %ip, "sign-in throttled");
        return retry(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed attempts. Wait {} minutes and try again, or ask your administrator to reset your password.",
                wait.div_ceil(60)
            ),
            Some((header::RETRY_AFTER, wait.to_string())),
        );
    }
    let found = match st.store.user_for_login(&f.email).await {
        Ok(u) => u,
        Err(e) => return error_response(None, e.into()),
    };
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, auth::dummy_hash().to_owned()),
    };
    let password = f.password.clone();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        st.limiter.fail(&f.email, &ip);
        st.metrics
            .login_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(peer = %ip, "failed sign-in");
        return retry(
            StatusCode::UNAUTHORIZED,
            "The email address or password is not right.",
            None,
        );
    };
    st.limiter.succeed(&f.email);
    let token = random_token();
    let now = now_ms();
    let ttl = st.config.session_hours * 3600;
    if let Err(e) = st
        .store
        .create_session(
            &hash_secret(&token),
            user.id,
            &random_token(),
            now,
            now + ttl as i64 * 1000,
        )
        .await
    {
        return error_response(None, e.into());
    }
    tracing::info!(user = user.id, "signed in");
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    if let Ok(v) = set_cookie(SESSION_COOKIE, &token, ttl, st.secure_cookies).parse() {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = set_cookie(LOGIN_CSRF_COOKIE, "", 0, st.secure_cookies).parse() {
        h.append(header::SET_COOKIE, v);
    }
    *res.status_mut() = StatusCode::SEE_OTHER;
    res
}

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    if let Some(t) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = st.store.delete_session(&hash_secret(t)).await {
            return error_response(None, e.into());
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            (
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", 0, st.secure_cookies),
            ),
        ],
    )
        .into_response()
}

/// `GET /`: a member's own overview, or the list of members in scope.
pub async fn home(State(st): State<AppState>, PageAuthed(a): PageAuthed) -> Response {
    let u = &a.session.user;
    if matches!(u.role, Role::MemberViewer | Role::MemberAdmin) && u.member_ids.len() == 1 {
        return Redirect::to(&format!("/members/{}", u.member_ids[0])).into_response();
    }
    let members = match st.store.list_members(&a.scope).await {
        Ok(m) => m,
        Err(e) => return error_response(Some(&viewer(&a)), e.into()),
    };
    let alerts = match st.store.alerts(&a.scope, None, 50).await {
        Ok(v) => v
            .into_iter()
            .filter(|x| x.status != AlertStatus::Resolved)
            .collect::<Vec<_>>(),
        Err(e) => return error_response(Some(&viewer(&a)), e.into()),
    };
    let collectors = match st.store.list_collectors(&a.scope, None).await {
        Ok(c) => c,
        Err(e) => return error_response(Some(&viewer(&a)), e.into()),
    };
    Html(web::home_page(&viewer(&a), &members, &alerts, &collectors, now_ms()).into_string())
        .into_response()
}

/// `GET /members/{id}`.
pub async fn member(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
) -> Response {
    match member_inner(&st, &a, id).await {
        Ok(r) => r,
        Err(e) => error_response(Some(&viewer(&a)), e),
    }
}

async fn member_inner(st: &AppState, a: &Authed, id: Id) -> Result<Response, ApiError> {
    let m = st
        .store
        .get_member(&a.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let now = now_ms();
    let today = day_of(now);
    let from = today - 13;
    let days = st.store.daily_counts(&a.scope, id, from, today).await?;
    let top_sources = st.store.top_sources(&a.scope, id, from, 10).await?;
    let top_ports = st.store.top_ports(&a.scope, id, from, 10).await?;
    let alerts = st.store.alerts(&a.scope, Some(id), 50).await?;
    let collectors = st.store.list_collectors(&a.scope, Some(id)).await?;
    let total_events = st.store.event_total(&a.scope, id).await?;
    let exclusions = st
        .store
        .list_exclusions(&a.scope, id)
        .await?
        .unwrap_or_default();
    let page = web::member_page(
        &viewer(a),
        &web::MemberOverview {
            member: &m,
            days: &days,
            top_sources: &top_sources,
            top_ports: &top_ports,
            alerts: &alerts,
            collectors: &collectors,
            total_events,
            exclusions: &exclusions,
            now_ms: now,
        },
    );
    Ok(Html(page.into_string()).into_response())
}

/// `GET /alerts/{id}`.
pub async fn alert(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
) -> Response {
    match st.store.alert(&a.scope, id).await {
        Ok(Some((alert, evidence))) => {
            Html(web::alert_page(&viewer(&a), &alert, &evidence).into_string()).into_response()
        }
        Ok(None) => error_response(Some(&viewer(&a)), ApiError::not_found("alert")),
        Err(e) => error_response(Some(&viewer(&a)), e.into()),
    }
}

/// The status form.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    status: String,
}

/// `POST /alerts/{id}/status`.
pub async fn alert_status(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
    Form(f): Form<StatusForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    let Some(status) = AlertStatus::from_name(&f.status) else {
        return error_response(
            Some(&viewer(&a)),
            ApiError::bad_request("invalid_status", "Choose new, acknowledged or resolved."),
        );
    };
    match update_status(&st, &a, id, status).await {
        Ok(()) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(e) => error_response(Some(&viewer(&a)), e),
    }
}

/// The feedback form.
#[derive(Debug, Deserialize)]
pub struct FeedbackForm {
    csrf: String,
    #[serde(default)]
    feedback: String,
    #[serde(default)]
    note: String,
}

/// `POST /alerts/{id}/feedback`.
pub async fn alert_feedback(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
    Form(f): Form<FeedbackForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    let Some(fb) = watchhouse_store::Feedback::from_name(&f.feedback) else {
        return error_response(
            Some(&viewer(&a)),
            ApiError::bad_request("invalid_feedback", "Choose one of the answers."),
        );
    };
    match crate::api::give_feedback(&st, &a, id, fb, &f.note).await {
        Ok(()) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(e) => error_response(Some(&viewer(&a)), e),
    }
}

/// `GET /intel`: feeds, analyst indicators and the form to add one (analysts, administrators).
pub async fn intel(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !matches!(a.session.user.role, Role::Analyst | Role::Admin) {
        return error_response(
            Some(&viewer(&a)),
            ApiError::forbidden("The intelligence page is for analysts and administrators."),
        );
    }
    let indicators = match st.store.list_indicators(true).await {
        Ok(v) => v,
        Err(e) => return error_response(Some(&viewer(&a)), e.into()),
    };
    let views = st.feed_views();
    let tlps: Vec<&str> = views.iter().map(|f| f.tlp.label()).collect();
    let statuses: Vec<String> = views
        .iter()
        .map(|f| {
            serde_json::to_value(f.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    let rows: Vec<web::FeedRow<'_>> = views
        .iter()
        .enumerate()
        .map(|(i, f)| web::FeedRow {
            name: &f.name,
            url: &f.url,
            format: &f.format,
            provenance: &f.provenance,
            category: &f.category,
            status: &statuses[i],
            message: &f.message,
            entries: f.entries,
            skipped: f.skipped,
            tlp: tlps[i],
            share: f.share,
            blocklist: f.blocklist,
            last_success_ms: f.last_success_ms,
            from_ui: f.from_ui,
        })
        .collect();
    let flash = q
        .get("added")
        .map(|v| format!("Added {v}. It is matched within seconds."))
        .or_else(|| {
            q.get("revoked").map(|_| {
                "Revoked. It is no longer matched, blocked or shared; partners see the revocation.".to_owned()
            })
        })
        .or_else(|| q.get("feed").map(|v| format!("Feed {v} added. It is fetched within a minute; its status shows below.")))
        .or_else(|| q.get("removed").map(|_| "Feed removed. Its entries are no longer used.".to_owned()));
    Html(
        web::intel_page(
            &viewer(&a),
            &web::IntelOverview {
                feeds: &rows,
                indicators: &indicators,
                entries: st.intel().matcher.len(),
                flash: flash.as_deref(),
                now_ms: now_ms(),
                can_manage_feeds: a.session.user.role == Role::Admin,
            },
        )
        .into_string(),
    )
    .into_response()
}

/// The add-indicator form.
#[derive(Debug, Deserialize)]
pub struct IndicatorForm {
    csrf: String,
    value: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    confidence: String,
    #[serde(default)]
    tlp: String,
    #[serde(default)]
    expires_days: String,
    #[serde(default)]
    description: String,
}

/// `POST /intel/indicators`.
pub async fn intel_add(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Form(f): Form<IndicatorForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    let num = |s: &str, what: &'static str| -> Result<Option<u32>, ApiError> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        s.trim().parse::<u32>().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_number", format!("{what} must be a whole number."))
        })
    };
    let body = (|| -> Result<crate::blocklist::IndicatorBody, ApiError> {
        Ok(crate::blocklist::IndicatorBody {
            value: f.value.clone(),
            category: f.category.clone(),
            confidence: num(&f.confidence, "Confidence")?.map(|c| c.min(255) as u8),
            tlp: f.tlp.clone(),
            expires_days: num(&f.expires_days, "Expires after")?,
            description: f.description.clone(),
        })
    })();
    let result = match body {
        Ok(b) => crate::blocklist::create_indicator(&st, &a, b).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(i) => Redirect::to(&format!(
            "/intel?added={}",
            crate::auth::urlencode(&i.value.to_string())
        ))
        .into_response(),
        Err(e) => error_response(Some(&viewer(&a)), e),
    }
}

/// The add-feed form.
#[derive(Debug, Deserialize)]
pub struct FeedForm {
    csrf: String,
    name: String,
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    confidence: String,
    #[serde(default)]
    tlp: String,
    #[serde(default)]
    share: Option<String>,
    #[serde(default)]
    blocklist: Option<String>,
}

/// `POST /intel/feeds` (administrators).
pub async fn intel_feed_add(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Form(f): Form<FeedForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    let mut c = crate::FeedConfig::file(f.name.trim(), "");
    c.url = f.url.trim().to_owned();
    if !f.format.is_empty() {
        c.format = f.format.clone();
    }
    c.category = f.category.trim().to_owned();
    if let Ok(n) = f.confidence.trim().parse::<u8>() {
        c.confidence = n;
    }
    if let Some(t) = watchhouse_intel::Tlp::from_name(&f.tlp) {
        c.tlp = t;
    }
    c.share = f.share.is_some();
    c.blocklist = f.blocklist.is_some();
    match crate::blocklist::create_feed(&st, &a, c).await {
        Ok(()) => Redirect::to(&format!(
            "/intel?feed={}",
            crate::auth::urlencode(f.name.trim())
        ))
        .into_response(),
        Err(e) => error_response(Some(&viewer(&a)), e),
    }
}

/// `POST /intel/feeds/{name}/delete` (administrators).
pub async fn intel_feed_delete(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    match crate::blocklist::remove_feed(&st, &a, &name).await {
        Ok(()) => Redirect::to("/intel?removed=1").into_response(),
        Err(e) => error_response(Some(&viewer(&a)), e),
    }
}

/// `POST /intel/indicators/{id}/revoke`.
pub async fn intel_revoke(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    if !matches!(a.session.user.role, Role::Analyst | Role::Admin) {
        return error_response(
            Some(&viewer(&a)),
            ApiError::forbidden("Only analysts and administrators manage intelligence."),
        );
    }
    match st.store.revoke_indicator(id, now_ms()).await {
        Ok(true) => {
            st.request_intel_rebuild();
            Redirect::to("/intel?revoked=1").into_response()
        }
        Ok(false) => error_response(Some(&viewer(&a)), ApiError::not_found("indicator")),
        Err(e) => error_response(Some(&viewer(&a)), e.into()),
    }
}

/// The window of the area view and the evidence export.
#[derive(Debug, Deserialize)]
pub struct AreaQuery {
    /// Days back from now (1–366; default 30).
    pub days: Option<u32>,
    /// `json` (default) or `csv`, for the export.
    pub format: Option<String>,
}

/// The area a police user looks after, in words, and the figures for it.
async fn area_data(
    st: &AppState,
    a: &Authed,
    days: u32,
) -> Result<(String, watchhouse_store::Evidence), ApiError> {
    let u = &a.session.user;
    if u.role.is_member_side() || u.role == Role::Partner {
        return Err(ApiError::forbidden(
            "The area view is for police officers and analysts.",
        ));
    }
    let title = match &a.scope {
        watchhouse_store::Scope::All => "National".to_owned(),
        watchhouse_store::Scope::Region(r) => format!("{r} region"),
        watchhouse_store::Scope::Force(_) => st
            .store
            .list_forces(&a.scope)
            .await?
            .first()
            .map(|f| f.name.clone())
            .unwrap_or_else(|| "Your force".into()),
        watchhouse_store::Scope::Members(_) => "Your members".into(),
    };
    let now = now_ms();
    let e = st
        .store
        .evidence(&a.scope, now - days as i64 * 86_400_000, now + 1)
        .await?;
    Ok((title, e))
}

/// `GET /area?days=30`: the area view for officers and analysts.
pub async fn area(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Query(q): Query<AreaQuery>,
) -> Response {
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let result = async {
        let (title, e) = area_data(&st, &a, days).await?;
        let urgent: Vec<_> = st
            .store
            .alerts(&a.scope, None, 500)
            .await?
            .into_iter()
            .filter(|x| {
                x.status != AlertStatus::Resolved && x.severity >= watchhouse_detect::Severity::High
            })
            .collect();
        let since = day_of(now_ms()) - days as i64;
        let campaigns = st
            .store
            .widespread_sources(since, st.config.national_min_members.max(2), 50)
            .await?;
        Ok::<_, ApiError>(
            Html(
                web::area::area_page(
                    &viewer(&a),
                    &web::area::AreaOverview {
                        title: &title,
                        days,
                        evidence: &e,
                        urgent: &urgent,
                        campaigns: &campaigns,
                    },
                )
                .into_string(),
            )
            .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(|e| error_response(Some(&viewer(&a)), e))
}

/// `GET /api/v1/evidence?days=30&format=json|csv`: the evidence-of-need figures, exportable.
pub async fn evidence(
    State(st): State<AppState>,
    a: Authed,
    Query(q): Query<AreaQuery>,
) -> Result<Response, ApiError> {
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let (title, e) = area_data(&st, &a, days).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(
            axum::Json(serde_json::json!({ "area": title, "days": days, "evidence": e }))
                .into_response(),
        ),
        "csv" => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"watchhouse-evidence.csv\"",
                ),
            ],
            web::area::evidence_csv(&title, days, &e),
        )
            .into_response()),
        other => Err(ApiError::bad_request(
            "invalid_format",
            format!("format `{other}`: use json or csv"),
        )),
    }
}

/// `GET /notifications`.
pub async fn notifications(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match st.store.notify_prefs(a.session.user.id).await {
        Ok((u, d)) => {
            Html(web::notifications_page(&viewer(&a), u, d, q.contains_key("saved")).into_string())
                .into_response()
        }
        Err(e) => error_response(Some(&viewer(&a)), e.into()),
    }
}

/// The preferences form (an unticked box is absent).
#[derive(Debug, Deserialize)]
pub struct NotifyForm {
    csrf: String,
    urgent: Option<String>,
    digest: Option<String>,
}

/// `POST /notifications`.
pub async fn notifications_save(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Form(f): Form<NotifyForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    match st
        .store
        .set_notify_prefs(a.session.user.id, f.urgent.is_some(), f.digest.is_some())
        .await
    {
        Ok(()) => Redirect::to("/notifications?saved=1").into_response(),
        Err(e) => error_response(Some(&viewer(&a)), e.into()),
    }
}

/// The exclusion forms.
#[derive(Debug, Deserialize)]
pub struct ExclusionForm {
    csrf: String,
    cidr: String,
    #[serde(default)]
    note: String,
}

fn member_manager(a: &Authed) -> Result<(), ApiError> {
    if !crate::auth::may_change_member(a) {
        return Err(ApiError::forbidden(
            "Your account can view this member but not change its blocklist.",
        ));
    }
    Ok(())
}

/// `POST /members/{id}/blocklist-exclusions`.
pub async fn exclusion_add(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
    Form(f): Form<ExclusionForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    let result = async {
        if st.store.get_member(&a.scope, id).await?.is_none() {
            return Err(ApiError::not_found("member"));
        }
        member_manager(&a)?;
        let cidr: watchhouse_intel::Cidr = f.cidr.trim().parse().map_err(|e: watchhouse_intel::CidrError| {
            ApiError::bad_request("invalid_cidr", format!("{e}. Write an address such as 203.0.113.7 or a block such as 203.0.113.0/24."))
        })?;
        let note: String = f.note.chars().take(500).collect();
        let held = st.store.list_exclusions(&a.scope, id).await?.unwrap_or_default().len();
        if held >= crate::blocklist::MAX_EXCLUSIONS {
            return Err(ApiError::bad_request(
                "too_many_exclusions",
                format!("A member keeps at most {} entries out of its blocklist.", crate::blocklist::MAX_EXCLUSIONS),
            ));
        }
        if !st.store.add_exclusion(&a.scope, id, &cidr.to_string(), &note).await? {
            return Err(ApiError::not_found("member"));
        }
        Ok(Redirect::to(&format!("/members/{id}")).into_response())
    }
    .await;
    result.unwrap_or_else(|e| error_response(Some(&viewer(&a)), e))
}

/// `POST /members/{id}/blocklist-exclusions/delete`.
pub async fn exclusion_delete(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
    Form(f): Form<ExclusionForm>,
) -> Response {
    if let Some(r) = stale_form(&a, &f.csrf) {
        return r;
    }
    let result = async {
        if st.store.get_member(&a.scope, id).await?.is_none() {
            return Err(ApiError::not_found("member"));
        }
        member_manager(&a)?;
        if !st
            .store
            .delete_exclusion(&a.scope, id, f.cidr.trim())
            .await?
        {
            return Err(ApiError::not_found("exclusion"));
        }
        Ok(Redirect::to(&format!("/members/{id}")).into_response())
    }
    .await;
    result.unwrap_or_else(|e| error_response(Some(&viewer(&a)), e))
}
