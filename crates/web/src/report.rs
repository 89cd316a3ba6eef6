//! The member report: what happened in a period, compared with the previous one and with other
//! members, and what to do. One model ([`MemberReport`], also the JSON format) rendered as an
//! HTML page and as a PDF with its charts. Pure.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use watchhouse_store::DayCount;

use crate::pdf::{Pdf, Rgb, PAGE_H};
use crate::{fmt_count, fmt_day, layout, Viewer};

/// A period: inclusive days since the epoch, with its label (`2026-W47`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// As written (`2026-W47`, `2026-11`, `2026-11-01..2026-11-14`).
    pub label: String,
    /// First day.
    pub from_day: i64,
    /// Last day (inclusive).
    pub to_day: i64,
}

impl Period {
    /// Reads `YYYY-Www` (ISO week), `YYYY-MM` (month) or `YYYY-MM-DD..YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Period, String> {
        use jiff::civil::{Date, ISOWeekDate, Weekday};
        let day = |d: Date| -> i64 { (d - Date::constant(1970, 1, 1)).get_days() as i64 };
        let bad = || {
            format!("period `{s}`: write 2026-W47 (a week), 2026-11 (a month) or 2026-11-01..2026-11-14")
        };
        let s = s.trim();
        if let Some((y, w)) = s.split_once("-W") {
            let y: i16 = y.parse().map_err(|_| bad())?;
            let w: i8 = w.parse().map_err(|_| bad())?;
            let monday = ISOWeekDate::new(y, w, Weekday::Monday)
                .map_err(|_| bad())?
                .date();
            let from = day(monday);
            return Ok(Period {
                label: s.to_owned(),
                from_day: from,
                to_day: from + 6,
            });
        }
        if let Some((a, b)) = s.split_once("..") {
            let a: Date = a.parse().map_err(|_| bad())?;
            let b: Date = b.parse().map_err(|_| bad())?;
            if b < a || day(b) - day(a) > 366 {
                return Err(format!(
                    "period `{s}`: the end must follow the start, within a year"
                ));
            }
            return Ok(Period {
                label: s.to_owned(),
                from_day: day(a),
                to_day: day(b),
            });
        }
        if s.len() == 7 {
            let first: Date = format!("{s}-01").parse().map_err(|_| bad())?;
            let last = first.last_of_month();
            return Ok(Period {
                label: s.to_owned(),
                from_day: day(first),
                to_day: day(last),
            });
        }
        Err(bad())
    }

    /// The ISO week that ended before `day` (the default weekly report).
    pub fn last_week(today: i64) -> Period {
        // 1970-01-01 was a Thursday: Monday-based weekday index.
        let weekday = (today + 3).rem_euclid(7);
        let this_monday = today - weekday;
        let from = this_monday - 7;
        let d = jiff::civil::Date::constant(1970, 1, 1)
            .checked_add(jiff::Span::new().days(from))
            .unwrap_or(jiff::civil::Date::constant(1970, 1, 1));
        let w = d.iso_week_date();
        Period {
            label: format!("{}-W{:02}", w.year(), w.week()),
            from_day: from,
            to_day: from + 6,
        }
    }

    /// The period of the same length just before.
    pub fn previous(&self) -> Period {
        let len = self.to_day - self.from_day + 1;
        Period {
            label: format!("the {len} days before"),
            from_day: self.from_day - len,
            to_day: self.from_day - 1,
        }
    }

    /// Days in the period.
    pub fn days(&self) -> i64 {
        self.to_day - self.from_day + 1
    }
}

/// Totals for a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Events the firewall recorded.
    pub events: u64,
    /// Of which blocked.
    pub blocked: u64,
    /// Of which allowed.
    pub allowed: u64,
    /// Alerts raised.
    pub alerts: u64,
}

/// An attacking source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRow {
    /// Address.
    pub ip: String,
    /// Events from it.
    pub events: u64,
    /// What intelligence says of it (feed: category), if anything.
    pub known_as: Vec<String>,
    /// Country and network, where known (no geolocation database ships with Watchhouse).
    pub network: Option<String>,
}

/// A targeted service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRow {
    /// `tcp/3389`.
    pub port: String,
    /// In words.
    pub service: String,
    /// Events.
    pub events: u64,
}

/// An alert in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRow {
    /// Id.
    pub id: i64,
    /// Severity.
    pub severity: String,
    /// Title.
    pub title: String,
    /// Status.
    pub status: String,
}

/// How this member compares with the others (never naming them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peers {
    /// Members compared with.
    pub members: usize,
    /// Their median events in the period.
    pub median_events: u64,
    /// Share of members that recorded fewer events than this one, 0–100.
    pub percentile: u32,
}

/// Everything in a member report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    /// Member id.
    pub member_id: i64,
    /// Member name.
    pub member_name: String,
    /// The period.
    pub period: Period,
    /// When generated, ms.
    pub generated_ms: i64,
    /// This period.
    pub totals: Totals,
    /// The period before.
    pub previous: Totals,
    /// Per day.
    pub days: Vec<DayCount>,
    /// Top attacking sources.
    pub top_sources: Vec<SourceRow>,
    /// Most targeted services.
    pub top_ports: Vec<PortRow>,
    /// Alerts raised in the period.
    pub alerts: Vec<AlertRow>,
    /// Comparison with other members.
    pub peers: Option<Peers>,
    /// What to do, most important first.
    pub actions: Vec<String>,
}

/// "+12%", "−40%", "new", "no change".
pub fn change(now: u64, before: u64) -> String {
    if before == 0 {
        return if now == 0 {
            "no change".into()
        } else {
            "new this period".into()
        };
    }
    let pct = (now as f64 - before as f64) * 100.0 / before as f64;
    if pct.abs() < 0.5 {
        "no change".into()
    } else if pct > 0.0 {
        format!("+{pct:.0}%")
    } else {
        format!("\u{2212}{:.0}%", -pct)
    }
}

/// The report as a web page.
pub fn report_page(viewer: Option<&Viewer<'_>>, r: &MemberReport) -> Markup {
    layout(
        &format!("Report {}", r.period.label),
        viewer,
        html! {
            a class="back-link" href={ "/members/" (r.member_id) } { "Back to " (r.member_name) }
            span class="caption" { "Report for " (r.period.label) " (" (fmt_day(r.period.from_day)) " – " (fmt_day(r.period.to_day)) ")" }
            h1 { (r.member_name) }
            p {
                a href={ "?period=" (r.period.label) "&format=pdf" } { "Download as PDF" } " · "
                a href={ "?period=" (r.period.label) "&format=json" } { "as JSON" }
            }
            dl class="summary" {
                div { dt { "Events recorded" } dd { (fmt_count(r.totals.events)) " (" (change(r.totals.events, r.previous.events)) ")" } }
                div { dt { "Blocked" } dd { (fmt_count(r.totals.blocked)) } }
                div { dt { "Allowed through" } dd { (fmt_count(r.totals.allowed)) } }
                div { dt { "Alerts" } dd { (r.totals.alerts) " (" (change(r.totals.alerts, r.previous.alerts)) ")" } }
            }
            @if let Some(p) = &r.peers {
                p { "Compared with " (p.members) " other members: the median recorded " (fmt_count(p.median_events)) " events; you recorded more than " (p.percentile) "% of them." }
            }
            h2 { "What to do" }
            ol class="steps" { @for a in &r.actions { li { (a) } } }
            h2 { "Events per day" }
            (crate::daily_chart(&r.days))
            h2 { "Top attacking sources" }
            table class="table" {
                thead { tr { th scope="col" { "Address" } th scope="col" class="num" { "Events" } th scope="col" { "Known as" } th scope="col" { "Country and network" } } }
                tbody { @for s in &r.top_sources { tr {
                    td { code { (s.ip) } } td class="num" { (fmt_count(s.events)) }
                    td { @if s.known_as.is_empty() { "—" } @else { (s.known_as.join("; ")) } }
                    td { (s.network.as_deref().unwrap_or("not known")) }
                } } }
            }
            h2 { "Most targeted services" }
            table class="table" {
                thead { tr { th scope="col" { "Port" } th scope="col" { "Service" } th scope="col" class="num" { "Events" } } }
                tbody { @for p in &r.top_ports { tr { td { (p.port) } td { (p.service) } td class="num" { (fmt_count(p.events)) } } } }
            }
            h2 { "Alerts" }
            @if r.alerts.is_empty() { p { "No alerts in this period." } } @else {
                table class="table" {
                    thead { tr { th scope="col" { "Severity" } th scope="col" { "Alert" } th scope="col" { "Status" } } }
                    tbody { @for a in &r.alerts { tr { td { (a.severity) } td { a href={ "/alerts/" (a.id) } { (a.title) } } td { (a.status) } } } }
                }
            }
        },
    )
}

const INK: Rgb = Rgb(11, 12, 12);
const GREY: Rgb = Rgb(80, 90, 95);
const BLUE: Rgb = Rgb(29, 112, 184);
const RED: Rgb = Rgb(212, 53, 28);
const RULE: Rgb = Rgb(177, 180, 182);

/// Text that fits a width (Helvetica averages about half its size per character).
fn wrap(s: &str, size: f32, width: f32) -> Vec<String> {
    let max = ((width / (size * 0.5)) as usize).max(10);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in s.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > max {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

struct Cursor {
    pdf: Pdf,
    y: f32,
}

impl Cursor {
    fn need(&mut self, h: f32) {
        if self.y - h < 50.0 {
            self.pdf.page();
            self.y = PAGE_H - 60.0;
        }
    }
    fn heading(&mut self, s: &str) {
        self.need(40.0);
        self.y -= 26.0;
        self.pdf.text(50.0, self.y, 14.0, true, INK, s);
        self.y -= 8.0;
    }
    fn para(&mut self, s: &str, size: f32, colour: Rgb) {
        for l in wrap(s, size, 495.0) {
            self.need(size + 4.0);
            self.y -= size + 4.0;
            self.pdf.text(50.0, self.y, size, false, colour, &l);
        }
    }
    fn row(&mut self, cols: &[(f32, &str)], bold: bool) {
        self.need(16.0);
        self.y -= 15.0;
        for (x, t) in cols {
            let t: String = t.chars().take(70).collect();
            self.pdf.text(*x, self.y, 9.5, bold, INK, &t);
        }
    }
}

/// The report as a PDF, with the events-per-day chart drawn as bars (blocked and allowed).
pub fn report_pdf(r: &MemberReport) -> Vec<u8> {
    let mut c = Cursor {
        pdf: Pdf::new(&format!(
            "Watchhouse report {} {}",
            r.member_name, r.period.label
        )),
        y: PAGE_H - 50.0,
    };
    c.pdf.text(
        50.0,
        c.y,
        10.0,
        false,
        GREY,
        &format!(
            "Watchhouse report · {} ({} – {})",
            r.period.label,
            fmt_day(r.period.from_day),
            fmt_day(r.period.to_day)
        ),
    );
    c.y -= 30.0;
    c.pdf.text(50.0, c.y, 22.0, true, INK, &r.member_name);
    c.y -= 10.0;
    for (label, v) in [
        (
            "Events recorded",
            format!(
                "{} ({})",
                fmt_count(r.totals.events),
                change(r.totals.events, r.previous.events)
            ),
        ),
        ("Blocked by your firewall", fmt_count(r.totals.blocked)),
        ("Allowed through", fmt_count(r.totals.allowed)),
        (
            "Alerts",
            format!(
                "{} ({})",
                r.totals.alerts,
                change(r.totals.alerts, r.previous.alerts)
            ),
        ),
    ] {
        c.row(&[(50.0, label), (250.0, &v)], false);
    }
    if let Some(p) = &r.peers {
        c.y -= 6.0;
        c.para(&format!("Compared with {} other members: the median recorded {} events; you recorded more than {}% of them.", p.members, fmt_count(p.median_events), p.percentile), 10.0, GREY);
    }
    c.heading("What to do");
    for (i, a) in r.actions.iter().enumerate() {
        c.para(&format!("{}. {a}", i + 1), 10.5, INK);
    }
    // The chart: one pair of bars per day, scaled to the busiest day.
    c.heading("Events per day");
    let chart_h = 150.0;
    c.need(chart_h + 40.0);
    let base = c.y - chart_h - 10.0;
    let max = r
        .days
        .iter()
        .map(|d| d.blocked.max(d.allowed))
        .max()
        .unwrap_or(0)
        .max(1) as f32;
    let n = r.period.days().max(1) as f32;
    let slot = 495.0 / n;
    let bar = (slot / 2.5).min(14.0);
    c.pdf.line(50.0, base, 545.0, base, 0.8, RULE);
    for i in 0..r.period.days() {
        let day = r.period.from_day + i;
        let d = r.days.iter().find(|d| d.day == day);
        let x = 50.0 + i as f32 * slot + (slot - 2.0 * bar) / 2.0;
        let (b, a) = d.map(|d| (d.blocked, d.allowed)).unwrap_or((0, 0));
        if b > 0 {
            c.pdf.rect(x, base, bar, b as f32 / max * chart_h, BLUE);
        }
        if a > 0 {
            c.pdf
                .rect(x + bar, base, bar, a as f32 / max * chart_h, RED);
        }
        if r.period.days() <= 16 || i % 7 == 0 {
            c.pdf.text(x, base - 12.0, 7.5, false, GREY, &fmt_day(day));
        }
    }
    c.pdf.text(
        50.0,
        base + chart_h + 6.0,
        8.0,
        false,
        GREY,
        &format!("busiest day: {} events", fmt_count(max as u64)),
    );
    c.pdf.rect(300.0, base + chart_h + 5.0, 8.0, 8.0, BLUE);
    c.pdf
        .text(312.0, base + chart_h + 6.0, 8.0, false, GREY, "blocked");
    c.pdf.rect(360.0, base + chart_h + 5.0, 8.0, 8.0, RED);
    c.pdf
        .text(372.0, base + chart_h + 6.0, 8.0, false, GREY, "allowed");
    c.y = base - 20.0;
    c.heading("Top attacking sources");
    c.row(
        &[(50.0, "Address"), (170.0, "Events"), (240.0, "Known as")],
        true,
    );
    for s in &r.top_sources {
        let known = if s.known_as.is_empty() {
            "-".to_owned()
        } else {
            s.known_as.join("; ")
        };
        c.row(
            &[
                (50.0, &s.ip),
                (170.0, &fmt_count(s.events)),
                (240.0, &known),
            ],
            false,
        );
    }
    c.heading("Most targeted services");
    c.row(
        &[(50.0, "Port"), (130.0, "Service"), (400.0, "Events")],
        true,
    );
    for p in &r.top_ports {
        c.row(
            &[
                (50.0, &p.port),
                (130.0, &p.service),
                (400.0, &fmt_count(p.events)),
            ],
            false,
        );
    }
    c.heading("Alerts");
    if r.alerts.is_empty() {
        c.para("No alerts in this period.", 10.0, INK);
    }
    for a in &r.alerts {
        c.row(
            &[(50.0, &a.severity), (110.0, &a.title), (480.0, &a.status)],
            false,
        );
    }
    c.pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let w = Period::parse("2026-W47").unwrap();
        assert_eq!(w.days(), 7);
        assert_eq!(crate::fmt_day(w.from_day), "16 Nov");
        let m = Period::parse("2026-02").unwrap();
        assert_eq!(m.days(), 28);
        let r = Period::parse("2026-11-01..2026-11-14").unwrap();
        assert_eq!(r.days(), 14);
        assert_eq!(r.previous().to_day, r.from_day - 1);
        for bad in [
            "2026-W60",
            "2026",
            "2026-13",
            "2026-11-14..2026-11-01",
            "week 47",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        // 21 Nov 2026 is a Saturday in ISO week 47: last week is W46.
        let today = Period::parse("2026-11-21..2026-11-21").unwrap().from_day;
        assert_eq!(Period::last_week(today).label, "2026-W46");
        assert_eq!(change(110, 100), "+10%");
        assert_eq!(change(50, 100), "\u{2212}50%");
        assert_eq!(change(5, 0), "new this period");
    }

    #[test]
    fn wrapping_keeps_every_word() {
        let s = "one two three four five six seven eight nine ten eleven twelve";
        let lines = wrap(s, 10.0, 80.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), s);
    }
}
