//! A stacked bar chart of events per day, as inline SVG plus the same numbers as a table.

use maud::{html, Markup};
use watchhouse_store::DayCount;

use crate::{fmt_count, fmt_day};

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 48.0;

/// A "nice" axis maximum at or above `n`: 1, 2 or 5 times a power of ten.
fn nice_max(n: u64) -> u64 {
    if n <= 5 {
        return 5;
    }
    let mut p = 1u64;
    while p.saturating_mul(10) <= n {
        p *= 10;
    }
    for m in [1, 2, 5, 10] {
        if p.saturating_mul(m) >= n {
            return p.saturating_mul(m);
        }
    }
    n
}

/// Renders the chart for `days` (oldest first).
pub fn daily_chart(days: &[DayCount]) -> Markup {
    let max = nice_max(
        days.iter()
            .map(|d| d.blocked + d.allowed)
            .max()
            .unwrap_or(0),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = days.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(1.0);
    let y = |v: u64| TOP + plot_h - (v as f64 / max as f64) * plot_h;
    let total_blocked: u64 = days.iter().map(|d| d.blocked).sum();
    let total_allowed: u64 = days.iter().map(|d| d.allowed).sum();
    let desc = format!(
        "Over {} days: {} events blocked and {} allowed. The busiest day had {} events.",
        days.len(),
        fmt_count(total_blocked),
        fmt_count(total_allowed),
        fmt_count(
            days.iter()
                .map(|d| d.blocked + d.allowed)
                .max()
                .unwrap_or(0)
        ),
    );
    html! {
        figure class="chart" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } role="img"
                aria-labelledby="chart-title chart-desc" class="chart-svg" {
                title id="chart-title" { "Firewall events per day, blocked and allowed" }
                desc id="chart-desc" { (desc) }
                @for tick in [0, max / 2, max] {
                    line class="grid" x1=(LEFT) x2=(W - RIGHT) y1=(y(tick)) y2=(y(tick)) {}
                    text class="axis" x=(LEFT - 8.0) y=(y(tick) + 4.0) text-anchor="end" { (fmt_count(tick)) }
                }
                @for (i, d) in days.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
                    @let yb = y(d.blocked);
                    @let ya = y(d.blocked + d.allowed);
                    rect class="bar-blocked" x=(x) y=(yb) width=(bar_w) height=((TOP + plot_h - yb).max(0.0)) {
                        title { (fmt_day(d.day)) ": " (fmt_count(d.blocked)) " blocked" }
                    }
                    rect class="bar-allowed" x=(x) y=(ya) width=(bar_w) height=((yb - ya).max(0.0)) {
                        title { (fmt_day(d.day)) ": " (fmt_count(d.allowed)) " allowed" }
                    }
                    @if days.len() <= 8 || (days.len() - 1 - i) % 2 == 0 {
                        text class="axis" x=(x + bar_w / 2.0) y=(H - BOTTOM + 16.0) text-anchor="middle" { (fmt_day(d.day)) }
                    }
                }
                rect class="bar-blocked" x=(LEFT) y=(H - 18.0) width="12" height="12" {}
                text class="axis" x=(LEFT + 18.0) y=(H - 8.0) { "Blocked" }
                rect class="bar-allowed" x=(LEFT + 100.0) y=(H - 18.0) width="12" height="12" {}
                text class="axis" x=(LEFT + 118.0) y=(H - 8.0) { "Allowed" }
            }
            figcaption {
                details class="details" {
                    summary { "Show the numbers as a table" }
                    table class="table" {
                        thead { tr { th scope="col" { "Day" } th scope="col" class="num" { "Blocked" } th scope="col" class="num" { "Allowed" } } }
                        tbody {
                            @for d in days {
                                tr { td { (fmt_day(d.day)) } td class="num" { (fmt_count(d.blocked)) } td class="num" { (fmt_count(d.allowed)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maximum_is_round() {
        assert_eq!(nice_max(0), 5);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(130), 200);
        assert_eq!(nice_max(4999), 5000);
        assert_eq!(nice_max(10_000), 10_000);
    }

    #[test]
    fn chart_has_one_bar_pair_per_day_and_a_table() {
        let days: Vec<DayCount> = (0..14)
            .map(|i| DayCount {
                day: 20_400 + i,
                blocked: i as u64 * 10,
                allowed: 1,
            })
            .collect();
        let s = daily_chart(&days).into_string();
        assert_eq!(
            s.matches(r#"<rect class="bar-blocked""#).count(),
            15,
            "14 bars + legend"
        );
        assert!(s.contains(r#"role="img""#));
        assert!(s.contains("<desc"));
        assert_eq!(s.matches("<tr>").count(), 15, "header + 14 rows");
        assert!(!s.contains("NaN"));
    }
}
