//! The area view for police: a force, a region or the nation — the "evidence of need" figures,
//! urgent alerts awaiting follow-up, and campaigns across members. Pure rendering.

use maud::{html, Markup};
use watchhouse_store::{Alert, Evidence, SourceSighting};

use crate::{fmt_count, fmt_time, layout, Viewer};

/// What the page shows.
pub struct AreaOverview<'a> {
    /// "Northshire Police", "North West region", "National".
    pub title: &'a str,
    /// The window, days.
    pub days: u32,
    /// The figures.
    pub evidence: &'a Evidence,
    /// Open high and critical alerts in the area.
    pub urgent: &'a [Alert],
    /// Sources seen at several members (nationally; members never named).
    pub campaigns: &'a [SourceSighting],
}

/// `GET /area`.
pub fn area_page(viewer: &Viewer<'_>, o: &AreaOverview<'_>) -> Markup {
    let e = o.evidence;
    let alerts: u64 = e.alerts_by_severity.values().sum();
    layout(
        o.title,
        Some(viewer),
        html! {
            span class="caption" { "Area view · last " (o.days) " days" }
            h1 { (o.title) }
            p {
                "Export these figures: "
                a href={ "/api/v1/evidence?days=" (o.days) "&format=csv" } { "CSV" } " · "
                a href={ "/api/v1/evidence?days=" (o.days) "&format=json" } { "JSON" }
                ". Other windows: "
                @for d in [7u32, 30, 90] {
                    a href={ "/area?days=" (d) } { (d) " days" } " "
                }
            }
            h2 { "Evidence of need" }
            dl class="summary" {
                div { dt { "Attacks observed (firewall events)" } dd { (fmt_count(e.events)) } }
                div { dt { "Members affected" } dd { (e.members_affected) " of " (e.members) } }
                div { dt { "Alerts raised" } dd { (fmt_count(alerts)) } }
                div { dt { "Alerts acted on" } dd { (fmt_count(e.alerts_acted_on)) } }
                div { dt { "Median time to act" } dd { @match e.median_minutes_to_act { Some(m) if m < 120.0 => { (format!("{m:.0} minutes")) }, Some(m) => { (format!("{:.1} hours", m / 60.0)) }, None => "–" } } }
                div { dt { "Members reporting" } dd { (e.members_reporting) " of " (e.members) } }
            }
            table class="table" {
                caption { "Alerts by kind" }
                thead { tr { th scope="col" { "Kind" } th scope="col" class="num" { "Alerts" } } }
                tbody { @for (k, n) in &e.alerts_by_kind { tr { td { (k.replace('_', " ")) } td class="num" { (fmt_count(*n)) } } } }
            }
            h2 { "Urgent alerts awaiting follow-up (" (e.open_urgent) ")" }
            @if o.urgent.is_empty() { p { "None open." } } @else {
                table class="table" {
                    thead { tr { th scope="col" { "Member" } th scope="col" { "Severity" } th scope="col" { "Alert" } th scope="col" { "Last seen" } } }
                    tbody { @for a in o.urgent { tr {
                        td { (a.member_name) } td { (a.severity.as_str()) }
                        td { a href={ "/alerts/" (a.id) } { (a.kind.label()) " – " (a.subject_ip) } }
                        td { (fmt_time(a.last_seen_ms)) }
                    } } }
                }
            }
            h2 { "Campaigns: sources seen at several members" }
            p { "National picture; members are counted, never named." }
            @if o.campaigns.is_empty() { p { "None in this window." } } @else {
                table class="table" {
                    thead { tr { th scope="col" { "Source" } th scope="col" class="num" { "Members" } th scope="col" class="num" { "Events" } } }
                    tbody { @for c in o.campaigns { tr { td { code { (c.ip) } } td class="num" { (c.members) } td class="num" { (fmt_count(c.events)) } } } }
                }
            }
        },
    )
}

/// The figures as CSV (one `metric,value` row each; alerts by kind and severity as
/// `alerts_kind_<kind>` / `alerts_severity_<severity>`).
pub fn evidence_csv(title: &str, days: u32, e: &Evidence) -> String {
    let mut out = String::from("area,days,metric,value\n");
    let area = title.replace(['"', ','], " ");
    let mut row = |m: &str, v: String| out.push_str(&format!("{area},{days},{m},{v}\n"));
    row("members", e.members.to_string());
    row("members_reporting", e.members_reporting.to_string());
    row("events", e.events.to_string());
    row("members_affected", e.members_affected.to_string());
    row(
        "alerts",
        e.alerts_by_severity.values().sum::<u64>().to_string(),
    );
    row("alerts_acted_on", e.alerts_acted_on.to_string());
    row(
        "median_minutes_to_act",
        e.median_minutes_to_act
            .map(|m| format!("{m:.1}"))
            .unwrap_or_default(),
    );
    row("open_urgent", e.open_urgent.to_string());
    for (k, n) in &e.alerts_by_kind {
        row(&format!("alerts_kind_{k}"), n.to_string());
    }
    for (k, n) in &e.alerts_by_severity {
        row(&format!("alerts_severity_{k}"), n.to_string());
    }
    out
}
