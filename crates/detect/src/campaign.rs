//! Campaigns across hub processes: one internet source attacking several members.
//!
//! The [`Engine`](crate::Engine) counts the members it has seen per source, which is every
//! member when the hub is one process. With several hub workers no process sees them all (each
//! holds some members), so the count also comes from the store, which every process writes: the
//! hub asks it, for the batch's [`sources`] (those that got through), how many *other* members
//! saw each one since [`since_day`], and passes the answer to
//! [`Engine::observe_with_reach`](crate::Engine::observe_with_reach).
//! Pure, like the rest of the crate; the store query is the hub's.
//!
//! The store's window is whole UTC days: the day the batch's newest event is in and the days
//! before it that the configured window reaches into, so a source is counted over at least the
//! window.

use std::net::IpAddr;

use watchhouse_event::{Direction, Event};

use crate::Thresholds;

const DAY_MS: i64 = 86_400_000;

/// Does this event count towards a campaign? Inbound, from an internet address (a private
/// address at two members is two different machines).
pub(crate) fn counts(e: &Event) -> bool {
    e.direction == Direction::Inbound && !watchhouse_intel::is_non_internet(e.src_ip)
}

/// Does this event tell its member of a campaign its source is part of? Only when the traffic
/// got through: a member whose firewall blocked the source has nothing to do (it still counts
/// towards the campaign, and the national view and the blocklist show it).
pub(crate) fn alerts(e: &Event) -> bool {
    counts(e) && e.action.is_allowed()
}

/// The distinct sources of a batch that could raise a campaign alert (see [`alerts`]), sorted:
/// the only ones whose count of other members is needed.
pub fn sources(events: &[Event]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = events
        .iter()
        .filter(|e| alerts(e))
        .map(|e| e.src_ip)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The first day (days since the epoch) to count other members' sightings from.
pub fn since_day(events: &[Event], t: &Thresholds) -> i64 {
    let newest = events.iter().map(|e| e.time_ms).max().unwrap_or(0);
    (newest - t.campaign_window_secs as i64 * 1000).div_euclid(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ev, T};
    use watchhouse_event::Action;

    #[test]
    fn sources_are_the_distinct_inbound_internet_ones_that_got_through() {
        let mut out = ev("203.0.113.13", "198.51.100.1", 22, Action::Allow, T);
        out.direction = Direction::Outbound;
        let batch = vec![
            ev("203.0.113.12", "198.51.100.1", 22, Action::Allow, T),
            ev("203.0.113.11", "198.51.100.1", 22, Action::Allow, T),
            ev("203.0.113.12", "198.51.100.1", 23, Action::Allow, T + 1),
            // Blocked only: counts towards a campaign, but its member is not told.
            ev("203.0.113.14", "198.51.100.1", 22, Action::Deny, T),
            ev("203.0.113.11", "198.51.100.1", 23, Action::Drop, T + 2),
            ev("10.0.0.5", "198.51.100.1", 22, Action::Allow, T),
            out,
        ];
        assert_eq!(
            sources(&batch),
            vec![
                "203.0.113.11".parse::<IpAddr>().unwrap(),
                "203.0.113.12".parse().unwrap()
            ]
        );
        assert!(counts(&batch[3]) && !alerts(&batch[3]));
    }

    #[test]
    fn the_window_starts_on_the_day_the_configured_window_reaches() {
        let mut t = Thresholds::default();
        let day = T.div_euclid(DAY_MS);
        let batch = vec![
            ev("203.0.113.11", "198.51.100.1", 22, Action::Deny, T - 5_000),
            ev("203.0.113.11", "198.51.100.1", 22, Action::Deny, T),
        ];
        // 24 hours back from the newest event: yesterday.
        assert_eq!(since_day(&batch, &t), (T - DAY_MS).div_euclid(DAY_MS));
        assert_eq!(since_day(&batch, &t), day - 1);
        t.campaign_window_secs = 3 * 86_400;
        assert_eq!(since_day(&batch, &t), day - 3);
        t.campaign_window_secs = 0;
        assert_eq!(since_day(&batch, &t), day);
    }
}
