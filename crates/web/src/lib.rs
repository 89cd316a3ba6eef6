//! The hub's web pages, rendered on the server from plain data.
//!
//! Pure: every function takes data and returns [`Markup`]; no IO, no clock (times come in as
//! milliseconds and the "now" used for relative text is passed in). Pages work without
//! JavaScript, follow GOV.UK patterns (one `h1`, labelled fields, error summaries, visible focus,
//! skip link) and keep colour contrast at WCAG AA. Charts are inline SVG with a title, a
//! description and the same numbers as a table.
//!
//! **Invariant: all text is escaped.** Only maud's `html!` builds markup, and `PreEscaped` is used
//! solely for the constant stylesheet-free SVG path data built from numbers in this crate.

use maud::{html, Markup, DOCTYPE};
use watchhouse_detect::{describe, services, AlertFacts};
use watchhouse_store::{Alert, Collector, DayCount, Member, Role, StoredEvent, TopItem, User};

mod chart;
pub use chart::daily_chart;

pub mod area;
pub mod intel;
pub mod pdf;
pub mod report;
pub use intel::{intel_page, FeedRow, IntelOverview};

/// The stylesheet, served at `/static/app.css` (the CSP forbids inline styles).
pub const APP_CSS: &str = include_str!("app.css");

/// The icon, served at `/static/favicon.svg` (and `/favicon.ico`).
pub const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="4" fill="#0b0c0c"/><path d="M16 5 L26 9 V16 C26 22 21 26 16 28 C11 26 6 22 6 16 V9 Z" fill="#1d70b8"/><path d="M16 10 V21 M16 24 V24.5" stroke="#fff" stroke-width="3" stroke-linecap="round"/></svg>"##;

/// Formats epoch milliseconds as `21 Nov 2026, 06:35 UTC`.
pub fn fmt_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%-d %b %Y, %H:%M:%S UTC").to_string(),
        Err(_) => "unknown time".to_owned(),
    }
}

/// Formats a day number (days since the epoch) as `21 Nov`.
pub fn fmt_day(day: i64) -> String {
    match jiff::Timestamp::from_second(day * 86_400) {
        Ok(t) => t.strftime("%-d %b").to_string(),
        Err(_) => day.to_string(),
    }
}

/// Thousands separators.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Who is signed in, for the header.
pub struct Viewer<'a> {
    /// The user.
    pub user: &'a User,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: &'a str,
}

/// `GET /notifications`: the signed-in user's notification preferences.
pub fn notifications_page(viewer: &Viewer<'_>, urgent: bool, digest: bool, saved: bool) -> Markup {
    layout(
        "Notifications",
        Some(viewer),
        html! {
            h1 { "Notifications" }
            @if saved { div class="notice" role="status" { "Saved." } }
            p { "Watchhouse can email you about alerts for the organisations you look after. Urgent alerts (high and critical) arrive within seconds; several at once come as one message, and at most a few an hour — the rest wait for the daily summary." }
            form method="post" action="/notifications" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                fieldset class="fieldset" {
                    legend { "Email me" }
                    div class="checkbox" {
                        input id="urgent" name="urgent" type="checkbox" value="on" checked[urgent];
                        label for="urgent" { "Urgent alerts, as they happen" }
                    }
                    div class="checkbox" {
                        input id="digest" name="digest" type="checkbox" value="on" checked[digest];
                        label for="digest" { "A daily summary of every alert, and the weekly report" }
                    }
                }
                button type="submit" class="button" { "Save" }
            }
        },
    )
}

/// The page frame: header, navigation, main content, footer.
pub fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Watchhouse" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
            }
            body {
                a class="skip-link" href="#main" { "Skip to main content" }
                header class="site-header" {
                    div class="container header-inner" {
                        a class="brand" href="/" { "Watchhouse" }
                        @if let Some(v) = viewer {
                            @if v.user.role == Role::ForceOfficer {
                                nav aria-label="Sections" {
                                    a href="/" { "Overview" }
                                    " "
                                    a href="/area" { "Area view" }
                                }
                            }
                            @if matches!(v.user.role, Role::Analyst | Role::Admin) {
                                nav aria-label="Sections" {
                                    a href="/" { "Overview" }
                                    " "
                                    a href="/area" { "Area view" }
                                    " "
                                    a href="/intel" { "Intelligence" }
                                }
                            }
                            nav aria-label="Account" {
                                span class="who" { (v.user.name) " · " (v.user.role.label()) }
                                @if v.user.role != Role::Partner {
                                    " " a class="account-link" href="/notifications" { "Notifications" } " "
                                }
                                form method="post" action="/logout" class="inline" {
                                    input type="hidden" name="csrf" value=(v.csrf);
                                    button type="submit" class="link-button" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main id="main" class="container" tabindex="-1" {
                    (body)
                }
                footer class="site-footer container" {
                    p { "Watchhouse – open-source cyber alarm. Scores and detections advise; a person decides." }
                }
            }
        }
    }
}

/// The sign-in page.
pub fn login_page(csrf: &str, email: &str, error: Option<&str>, next: &str) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error {
                div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
                    h2 id="error-summary-title" { "There is a problem" }
                    p { (e) }
                }
            }
            h1 { "Sign in to Watchhouse" }
            form method="post" action="/login" novalidate {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                div class="field" {
                    label for="email" { "Email address" }
                    input id="email" name="email" type="email" autocomplete="username" spellcheck="false" value=(email) required;
                }
                div class="field" {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                button type="submit" class="button" { "Sign in" }
            }
        },
    )
}

/// A page saying what went wrong and what to do next.
pub fn error_page(viewer: Option<&Viewer<'_>>, title: &str, message: &str) -> Markup {
    layout(
        title,
        viewer,
        html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Go to your Watchhouse home page" } }
        },
    )
}

fn severity_tag(a: &Alert) -> Markup {
    let s = a.severity.as_str();
    html! { strong class={ "tag tag-" (s) } { (s.to_uppercase()) } }
}

fn facts(a: &Alert) -> AlertFacts {
    AlertFacts {
        kind: a.kind,
        severity: a.severity,
        subject_ip: a.subject_ip,
        lists: a.lists.clone(),
        ports: a.ports.clone(),
        event_count: a.event_count,
    }
}

fn alerts_table(alerts: &[Alert], show_member: bool) -> Markup {
    html! {
        @if alerts.is_empty() {
            p { "No alerts. Watchhouse will show one here as soon as it sees something you should know about." }
        } @else {
            table class="table" {
                caption class="visually-hidden" { "Alerts, most urgent first" }
                thead { tr {
                    th scope="col" { "Severity" }
                    th scope="col" { "What happened" }
                    @if show_member { th scope="col" { "Member" } }
                    th scope="col" { "Last seen" }
                    th scope="col" { "Status" }
                } }
                tbody {
                    @for a in alerts {
                        tr {
                            td { (severity_tag(a)) }
                            td { a href={ "/alerts/" (a.id) } { (describe(&facts(a)).title) } }
                            @if show_member { td { a href={ "/members/" (a.member_id) } { (a.member_name) } } }
                            td { (fmt_time(a.last_seen_ms)) }
                            td { (a.status.as_str()) }
                        }
                    }
                }
            }
        }
    }
}

fn collector_status(c: &Collector, now_ms: i64) -> &'static str {
    if c.revoked {
        "revoked"
    } else if c.last_seen_ms.is_some_and(|t| now_ms - t < 5 * 60_000) {
        "reporting"
    } else {
        "not reporting"
    }
}

/// Home page for users who see several members (MSPs, officers, analysts, administrators).
pub fn home_page(
    viewer: &Viewer<'_>,
    members: &[Member],
    alerts: &[Alert],
    collectors: &[Collector],
    now_ms: i64,
) -> Markup {
    let heading = match viewer.user.role {
        Role::ForceOfficer => "Members in your force area",
        Role::Analyst => "Members in your area",
        Role::Msp => "Members you manage",
        _ => "Members",
    };
    layout(
        "Home",
        Some(viewer),
        html! {
            h1 { "Watchhouse" }
            h2 { "Open alerts needing attention" }
            (alerts_table(alerts, true))
            h2 { (heading) }
            @if members.is_empty() {
                p { "No members yet." }
            } @else {
                table class="table" {
                    caption class="visually-hidden" { "Members and the health of their collectors" }
                    thead { tr {
                        th scope="col" { "Member" } th scope="col" { "Collectors" }
                        th scope="col" { "Not reporting" } th scope="col" { "Last contact" }
                    } }
                    tbody {
                        @for m in members {
                            @let mine: Vec<&Collector> = collectors.iter().filter(|c| c.member_id == m.id && !c.revoked).collect();
                            @let silent = mine.iter().filter(|c| collector_status(c, now_ms) == "not reporting").count();
                            @let last = mine.iter().filter_map(|c| c.last_seen_ms).max();
                            tr {
                                td { a href={ "/members/" (m.id) } { (m.name) } }
                                td class="num" { (mine.len()) }
                                td class="num" { @if silent > 0 { strong { (silent) } } @else { "0" } }
                                td { @if let Some(t) = last { (fmt_time(t)) } @else { "never" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Everything the member overview shows.
pub struct MemberOverview<'a> {
    /// The member.
    pub member: &'a Member,
    /// Per-day counts, oldest first.
    pub days: &'a [DayCount],
    /// Top inbound sources.
    pub top_sources: &'a [TopItem],
    /// Top targeted ports.
    pub top_ports: &'a [TopItem],
    /// Alerts.
    pub alerts: &'a [Alert],
    /// Collectors.
    pub collectors: &'a [Collector],
    /// Total events stored.
    pub total_events: u64,
    /// Entries the member keeps out of its blocklist.
    pub exclusions: &'a [watchhouse_store::Exclusion],
    /// Now, for "last seen" wording.
    pub now_ms: i64,
}

/// The member overview page.
pub fn member_page(viewer: &Viewer<'_>, o: &MemberOverview<'_>) -> Markup {
    let blocked: u64 = o.days.iter().map(|d| d.blocked).sum();
    let allowed: u64 = o.days.iter().map(|d| d.allowed).sum();
    let open_high = o
        .alerts
        .iter()
        .filter(|a| {
            a.severity >= watchhouse_detect::Severity::High
                && a.status != watchhouse_store::AlertStatus::Resolved
        })
        .count();
    layout(
        o.member.name.as_str(),
        Some(viewer),
        html! {
            span class="caption" { "Member overview" }
            h1 { (o.member.name) }
            @if open_high > 0 {
                div class="notice notice-warning" role="status" {
                    strong { (open_high) " urgent " @if open_high == 1 { "alert needs" } @else { "alerts need" } " your attention." }
                    " Start with the first alert in the list below."
                }
            }
            dl class="summary" {
                div { dt { "Events in the last 14 days" } dd { (fmt_count(blocked + allowed)) } }
                div { dt { "Blocked by your firewall" } dd { (fmt_count(blocked)) } }
                div { dt { "Allowed through" } dd { (fmt_count(allowed)) } }
                div { dt { "All events stored" } dd { (fmt_count(o.total_events)) } }
            }
            h2 { "Alerts" }
            (alerts_table(o.alerts, false))
            h2 id="chart-heading" { "Events per day" }
            (daily_chart(o.days))
            div class="columns" {
                section aria-labelledby="sources-heading" {
                    h2 id="sources-heading" { "Top sources of inbound traffic" }
                    (top_table(o.top_sources, "Source address", None))
                }
                section aria-labelledby="ports-heading" {
                    h2 id="ports-heading" { "Most targeted services" }
                    (top_table(o.top_ports, "Protocol / port", Some(port_label)))
                }
            }
            h2 { "Reports" }
            p {
                a href={ "/members/" (o.member.id) "/report" } { "Last week's report" }
                " (also as PDF and JSON; any period with ?period=2026-11 or 2026-W47)."
            }
            h2 { "Blocklist for your firewall" }
            p {
                "Addresses known to attack, from the intelligence feeds, our analysts and the sources seen attacking several members. "
                "Point your firewall at one of these links (sign in with HTTP Basic or an API token) so it refreshes on its own; entries expire when they stop being seen."
            }
            ul class="inline-list" {
                @for (f, label) in [("txt", "Plain text"), ("nft", "nftables"), ("ipset", "ipset"), ("pf", "pf table"), ("mikrotik", "MikroTik"), ("fortigate", "FortiGate"), ("panos", "Palo Alto EDL")] {
                    li { a href={ "/api/v1/members/" (o.member.id) "/blocklist/" (f) } { (label) } }
                }
            }
            @if !o.exclusions.is_empty() {
                table class="table" {
                    caption { "Kept out of your blocklist" }
                    thead { tr { th scope="col" { "Address or block" } th scope="col" { "Why" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                    tbody { @for x in o.exclusions { tr {
                        td { code { (x.cidr) } } td { (x.note) }
                        td { @if viewer.user.role != Role::MemberViewer {
                            form method="post" action={ "/members/" (o.member.id) "/blocklist-exclusions/delete" } class="inline" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                input type="hidden" name="cidr" value=(x.cidr);
                                button type="submit" class="link-button" { "Put back" span class="visually-hidden" { " " (x.cidr) } }
                            }
                        } }
                    } } }
                }
            }
            @if viewer.user.role != Role::MemberViewer {
                form method="post" action={ "/members/" (o.member.id) "/blocklist-exclusions" } class="stack" {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    div class="field" {
                        label for="exclude-cidr" { "Keep an address or block out of your blocklist (for example a partner that is wrongly listed)" }
                        input id="exclude-cidr" name="cidr" type="text" required autocomplete="off" spellcheck="false";
                    }
                    div class="field" {
                        label for="exclude-note" { "Why (optional)" }
                        input id="exclude-note" name="note" type="text" autocomplete="off";
                    }
                    button type="submit" class="button" { "Keep it out" }
                }
            }
            h2 { "Collectors" }
            @if o.collectors.is_empty() {
                p { "No collector has been enrolled yet. Ask your Watchhouse administrator for an enrolment token." }
            } @else {
                table class="table" {
                    caption class="visually-hidden" { "Collectors and their health" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Last contact" }
                        th scope="col" { "Lines received" } th scope="col" { "Not understood" } th scope="col" { "Status" }
                    } }
                    tbody {
                        @for c in o.collectors {
                            @let unparsed: u64 = c.stats.as_ref().map(|s| s.unparsed.values().sum()).unwrap_or(0);
                            tr {
                                td { (c.name) }
                                td { @if let Some(t) = c.last_seen_ms { (fmt_time(t)) } @else { "never" } }
                                td { (fmt_count(c.stats.as_ref().map(|s| s.lines_received).unwrap_or(0))) }
                                td { (fmt_count(unparsed)) }
                                td {
                                    @match collector_status(c, o.now_ms) {
                                        "not reporting" => strong { "not reporting" },
                                        s => (s),
                                    }
                                }
                            }
                        }
                    }
                }
                @for c in o.collectors {
                    @if let Some(s) = &c.stats {
                        @if !s.samples.is_empty() {
                            details class="details" {
                                summary { "Lines " (c.name) " could not read (" (s.samples.len()) " samples)" }
                                table class="table" {
                                    thead { tr { th scope="col" { "Format" } th scope="col" { "Reason" } th scope="col" { "Line" } } }
                                    tbody {
                                        @for sm in &s.samples {
                                            tr { td { (sm.format) } td { (sm.reason) } td { code { (sm.line) } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn port_label(key: &str) -> String {
    let port = key.rsplit('/').next().and_then(|p| p.parse::<u16>().ok());
    match port {
        Some(p) => format!("{key} – {}", services::describe(p)),
        None => key.to_owned(),
    }
}

fn top_table(items: &[TopItem], what: &str, label: Option<fn(&str) -> String>) -> Markup {
    html! {
        @if items.is_empty() {
            p { "Nothing yet." }
        } @else {
            table class="table" {
                thead { tr { th scope="col" { (what) } th scope="col" class="num" { "Events" } } }
                tbody {
                    @for i in items {
                        tr {
                            td { @if let Some(f) = label { (f(&i.key)) } @else { code { (i.key) } } }
                            td class="num" { (fmt_count(i.events)) }
                        }
                    }
                }
            }
        }
    }
}

/// The alert detail page.
pub fn alert_page(viewer: &Viewer<'_>, a: &Alert, evidence: &[StoredEvent]) -> Markup {
    let text = describe(&facts(a));
    layout(
        "Alert",
        Some(viewer),
        html! {
            a class="back-link" href={ "/members/" (a.member_id) } { "Back to " (a.member_name) }
            span class="caption" { (severity_tag(a)) " " (a.kind.label()) }
            h1 { (text.title) }
            h2 { "What this means" }
            p { (text.what_it_means) }
            h2 { "What to do" }
            ol class="steps" {
                @for s in &text.what_to_do { li { (s) } }
            }
            dl class="summary" {
                div { dt { "First seen" } dd { (fmt_time(a.first_seen_ms)) } }
                div { dt { "Last seen" } dd { (fmt_time(a.last_seen_ms)) } }
                div { dt { "Events" } dd { (fmt_count(a.event_count)) } }
                div { dt { "Status" } dd { (a.status.as_str()) } }
            }
            @if !a.labels.is_empty() {
                h2 { "Why this address is listed" }
                table class="table" {
                    thead { tr {
                        th scope="col" { "List" } th scope="col" { "Says it is" } th scope="col" class="num" { "Confidence" }
                    } }
                    tbody {
                        @for l in &a.labels {
                            tr { td { (l.feed) } td { (l.category.replace('_', " ")) } td class="num" { (l.confidence) "%" } }
                        }
                    }
                }
            }
            @if viewer.user.role != Role::MemberViewer {
            h2 { "Update status" }
            form method="post" action={ "/alerts/" (a.id) "/status" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                fieldset class="fieldset" {
                    legend { "Status of this alert" }
                    @for (v, l) in [("new", "New"), ("acknowledged", "Acknowledged – someone is dealing with it"), ("resolved", "Resolved")] {
                        div class="radio" {
                            input type="radio" id={ "status-" (v) } name="status" value=(v) checked[a.status.as_str() == v];
                            label for={ "status-" (v) } { (l) }
                        }
                    }
                }
                button type="submit" class="button" { "Save status" }
            }
            }
            @if viewer.user.role != Role::MemberViewer {
                h2 { "Tell us about this alert" }
                @if let Some(fb) = a.feedback {
                    p { "Answered: " strong { (fb.label()) } "." }
                }
                form method="post" action={ "/alerts/" (a.id) "/feedback" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    fieldset class="fieldset" {
                        legend { "Was this alert right?" }
                        @for (v, l) in [
                            ("expected", "Expected – we know this traffic (for example our own security testing). Do not alert us about it for 30 days."),
                            ("false_positive", "False alarm – this is wrong. Do not alert us about it for 30 days; our analysts will review the intelligence."),
                            ("confirmed", "Confirmed – this was hostile."),
                        ] {
                            div class="radio" {
                                input type="radio" id={ "feedback-" (v) } name="feedback" value=(v) checked[a.feedback.map(|f| f.as_str()) == Some(v)];
                                label for={ "feedback-" (v) } { (l) }
                            }
                        }
                    }
                    div class="field" {
                        label for="feedback-note" { "Anything we should know (optional)" }
                        input id="feedback-note" name="note" type="text" autocomplete="off";
                    }
                    button type="submit" class="button" { "Send answer" }
                }
            }
            h2 { "Evidence" }
            p { "The firewall log lines behind this alert (up to 50)." }
            table class="table" {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Action" } th scope="col" { "From" }
                    th scope="col" { "To" } th scope="col" { "Protocol" } th scope="col" class="num" { "Count" }
                } }
                tbody {
                    @for e in evidence {
                        tr {
                            td { (fmt_time(e.event.time_ms)) }
                            td { (e.event.action.as_str()) }
                            td { code { (e.event.src_ip) @if let Some(p) = e.event.src_port { ":" (p) } } }
                            td { code { (e.event.dst_ip) @if let Some(p) = e.event.dst_port { ":" (p) } } }
                            td { (e.event.protocol) }
                            td class="num" { (e.event.count) }
                        }
                    }
                }
            }
            details class="details" {
                summary { "Original log lines" }
                @for e in evidence { pre { code { (e.event.raw) } } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_days_format() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_day(20_413), "21 Nov");
        assert_eq!(fmt_time(0), "1 Jan 1970, 00:00:00 UTC");
    }

    #[test]
    fn login_page_escapes_and_labels() {
        let p = login_page(
            "tok",
            "<script>x</script>",
            Some("Wrong & bad"),
            "/members/1",
        )
        .into_string();
        assert!(!p.contains("<script>x"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.contains(r#"<label for="email">"#));
        assert!(p.contains(r#"<label for="password">"#));
        assert!(p.contains("Wrong &amp; bad"));
        assert!(p.contains(r#"lang="en""#));
        assert_eq!(p.matches("<h1").count(), 1);
    }
}
