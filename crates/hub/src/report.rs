//! Member reports: gathering a period's figures from the store (within the caller's scope) into
//! the report model that `watchhouse_web::report` renders as HTML, PDF or JSON.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use watchhouse_detect::{describe, services, AlertFacts, Severity};
use watchhouse_store::{AlertStatus, Id, Scope, Store};
use watchhouse_web::report::{AlertRow, MemberReport, Peers, Period, PortRow, SourceRow, Totals};

use crate::auth::{Authed, PageAuthed};
use crate::error::ApiError;
use crate::AppState;

/// Gathers a member's report. `None` if the member is out of scope.
pub async fn gather(
    store: &dyn Store,
    intel: &crate::intel::Intel,
    asn: Option<&watchhouse_intel::asn::AsnTable>,
    scope: &Scope,
    member_id: Id,
    period: &Period,
    now_ms: i64,
) -> Result<Option<MemberReport>, watchhouse_store::StoreError> {
    let Some(member) = store.get_member(scope, member_id).await? else {
        return Ok(None);
    };
    let totals = |days: &[watchhouse_store::DayCount]| {
        let blocked: u64 = days.iter().map(|d| d.blocked).sum();
        let allowed: u64 = days.iter().map(|d| d.allowed).sum();
        Totals {
            events: blocked + allowed,
            blocked,
            allowed,
            alerts: 0,
        }
    };
    let days = store
        .daily_counts(scope, member_id, period.from_day, period.to_day)
        .await?;
    let prev = period.previous();
    let prev_days = store
        .daily_counts(scope, member_id, prev.from_day, prev.to_day)
        .await?;
    let day_ms = 86_400_000;
    let alerts: Vec<_> = store
        .alerts_created_between(
            scope,
            period.from_day * day_ms,
            (period.to_day + 1) * day_ms,
            1_000,
        )
        .await?
        .into_iter()
        .filter(|a| a.member_id == member_id)
        .collect();
    let prev_alerts = store
        .alerts_created_between(
            scope,
            prev.from_day * day_ms,
            (prev.to_day + 1) * day_ms,
            1_000,
        )
        .await?
        .into_iter()
        .filter(|a| a.member_id == member_id)
        .count() as u64;
    let mut t = totals(&days);
    t.alerts = alerts.len() as u64;
    let mut p = totals(&prev_days);
    p.alerts = prev_alerts;
    let m = &intel.matcher;
    let top_sources = store
        .top_sources_between(scope, member_id, period.from_day, period.to_day, 10)
        .await?
        .into_iter()
        .map(|s| SourceRow {
            known_as: s
                .key
                .parse()
                .ok()
                .and_then(|ip| m.lookup(ip))
                .map(|hit| {
                    hit.labels()
                        .iter()
                        .map(|l| {
                            format!(
                                "{}: {}",
                                m.feed(l.feed).name,
                                m.category(*l).replace('_', " ")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            network: asn
                .zip(s.key.parse().ok())
                .and_then(|(t, ip)| t.lookup(ip))
                .map(|i| i.describe()),
            ip: s.key,
            events: s.events,
        })
        .collect();
    let top_ports: Vec<PortRow> = store
        .top_ports_between(scope, member_id, period.from_day, period.to_day, 10)
        .await?
        .into_iter()
        .map(|p| {
            let port = p
                .key
                .rsplit('/')
                .next()
                .and_then(|x| x.parse::<u16>().ok())
                .unwrap_or(0);
            PortRow {
                service: services::describe(port).to_owned(),
                port: p.key,
                events: p.events,
            }
        })
        .collect();
    // Peers: every member's total in the period, names never used.
    let all = store
        .member_event_totals(period.from_day, period.to_day)
        .await?;
    let others: Vec<u64> = all
        .iter()
        .filter(|(id, _)| *id != member_id)
        .map(|(_, n)| *n)
        .collect();
    let peers = (others.len() >= 2).then(|| {
        let mut v = others.clone();
        v.sort_unstable();
        let median = v[v.len() / 2];
        let below = v.iter().filter(|n| **n < t.events).count();
        Peers {
            members: v.len(),
            median_events: median,
            percentile: (below * 100 / v.len()) as u32,
        }
    });
    // What to do: open urgent alerts first (their first step), then what the traffic suggests.
    let mut actions: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for a in &alerts {
        let text = describe(&AlertFacts {
            kind: a.kind,
            severity: a.severity,
            subject_ip: a.subject_ip,
            lists: a.lists.clone(),
            ports: a.ports.clone(),
            event_count: a.event_count,
        });
        if a.severity >= Severity::High && a.status != AlertStatus::Resolved {
            if let Some(first) = text.what_to_do.first() {
                let step = format!("{} — {first}", text.title);
                if !actions.contains(&step) && actions.len() < 5 {
                    actions.push(step);
                }
            }
        }
        rows.push(AlertRow {
            id: a.id,
            severity: a.severity.as_str().into(),
            title: text.title,
            status: a.status.as_str().into(),
        });
    }
    if t.allowed > 0
        && top_ports.iter().any(|p| {
            p.port
                .rsplit('/')
                .next()
                .and_then(|x| x.parse().ok())
                .is_some_and(services::is_risky)
        })
    {
        actions.push("Some risky services were targeted. Check with whoever looks after your IT that none of them is open to the whole internet.".into());
    }
    actions.push(
        "Load your Watchhouse blocklist into your firewall so known attackers are dropped before they reach you (the formats are listed on your overview page).".into(),
    );
    actions.push("Keep every internet-facing device updated, and use strong, unique passwords with two-step sign-in wherever you can.".into());
    Ok(Some(MemberReport {
        member_id,
        member_name: member.name,
        period: period.clone(),
        generated_ms: now_ms,
        totals: t,
        previous: p,
        days,
        top_sources,
        top_ports,
        alerts: rows,
        peers,
        actions,
    }))
}

/// Query of the report routes.
#[derive(Debug, serde::Deserialize)]
pub struct ReportQuery {
    /// `2026-W47`, `2026-11`, or `2026-11-01..2026-11-14`; default last week.
    pub period: Option<String>,
    /// `html` (default for the page), `pdf` or `json`.
    pub format: Option<String>,
}

fn period_of(q: &ReportQuery) -> Result<Period, ApiError> {
    match &q.period {
        Some(p) => Period::parse(p).map_err(|e| ApiError::bad_request("invalid_period", e)),
        None => Ok(Period::last_week(watchhouse_store::day_of(crate::now_ms()))),
    }
}

fn respond(
    r: &MemberReport,
    format: &str,
    viewer: Option<&watchhouse_web::Viewer<'_>>,
) -> Result<Response, ApiError> {
    let file = format!(
        "watchhouse-{}-{}",
        r.member_id,
        r.period.label.replace("..", "_")
    );
    let attach = |ct: &'static str, ext: &str, body: Vec<u8>| {
        let mut res = (StatusCode::OK, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{file}.{ext}\"")) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        res
    };
    match format {
        "html" => {
            Ok(Html(watchhouse_web::report::report_page(viewer, r).into_string()).into_response())
        }
        "pdf" => Ok(attach(
            "application/pdf",
            "pdf",
            watchhouse_web::report::report_pdf(r),
        )),
        "json" => Ok(attach(
            "application/json",
            "json",
            serde_json::to_vec_pretty(r).map_err(ApiError::internal)?,
        )),
        other => Err(ApiError::bad_request(
            "invalid_format",
            format!("format `{other}`: use html, pdf or json"),
        )),
    }
}

/// `GET /members/{id}/report?period=…&format=html|pdf|json`.
pub async fn page(
    State(st): State<AppState>,
    PageAuthed(a): PageAuthed,
    Path(id): Path<Id>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let viewer = watchhouse_web::Viewer {
        user: &a.session.user,
        csrf: &a.session.csrf,
    };
    let result = async {
        let period = period_of(&q)?;
        let r = gather(
            st.store.as_ref(),
            &st.intel(),
            st.asn().as_deref(),
            &a.scope,
            id,
            &period,
            crate::now_ms(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
        respond(&r, q.format.as_deref().unwrap_or("html"), Some(&viewer))
    }
    .await;
    result.unwrap_or_else(|e| crate::pages::error_response(Some(&viewer), e))
}

/// `GET /api/v1/members/{id}/report?period=…&format=json|pdf|html` (JSON by default).
pub async fn api(
    State(st): State<AppState>,
    a: Authed,
    Path(id): Path<Id>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let period = period_of(&q)?;
    let r = gather(
        st.store.as_ref(),
        &st.intel(),
        st.asn().as_deref(),
        &a.scope,
        id,
        &period,
        crate::now_ms(),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("member"))?;
    respond(&r, q.format.as_deref().unwrap_or("json"), None)
}
