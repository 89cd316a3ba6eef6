//! Detections that need memory across batches: port scans, brute force, exposed services,
//! campaigns across members and volume anomalies.
//!
//! Pure and deterministic: time comes from the events, never from a clock, so a replayed
//! sequence gives the same observations. The [`Engine`] holds bounded state (windows per source,
//! hourly counts per member); the hub keeps one and feeds it every stored batch.
//!
//! **Invariant: a retried batch is not counted twice.** The engine remembers recent
//! `(collector, batch id)` pairs and ignores a batch it has seen, so a collector's retry after a
//! lost acknowledgement cannot push a count over a threshold.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

/// The engine's maps are keyed by addresses attackers choose: a hasher seeded at random per
/// map (foldhash), many times cheaper than std's SipHash on these small keys.
type Fast = foldhash::fast::RandomState;

use serde::{Deserialize, Serialize};
use watchhouse_event::{Direction, Event, IpProto};

use crate::{services, AlertKind, Observation, Severity};

/// Thresholds for the stateful detections. Every one can be set in the hub's `[detect]`
/// configuration section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Port scan: the window, in seconds.
    pub scan_window_secs: u64,
    /// Port scan: distinct destination ports from one source within the window.
    pub scan_min_ports: usize,
    /// Port scan (sweep): distinct destination addresses from one source within the window.
    pub scan_min_hosts: usize,
    /// Brute force: the window, in seconds.
    pub brute_window_secs: u64,
    /// Brute force: attempts from one source on one remote-access service within the window.
    pub brute_min_attempts: u64,
    /// Campaign: distinct members a source must reach within the window.
    pub campaign_min_members: usize,
    /// Campaign: the window, in seconds.
    pub campaign_window_secs: u64,
    /// Volume anomaly: hours of history before a member's baseline is trusted.
    pub volume_warmup_hours: u32,
    /// Volume anomaly: an hour with more than this percentage of the baseline is anomalous
    /// (500 = five times the usual).
    pub volume_factor_pct: u32,
    /// Volume anomaly: and at least this many events (small numbers are never anomalies).
    pub volume_min_events: u64,
    /// Most sources remembered at once (oldest forgotten first): bounds memory under floods.
    pub max_sources: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            scan_window_secs: 60,
            scan_min_ports: 10,
            scan_min_hosts: 10,
            brute_window_secs: 300,
            brute_min_attempts: 20,
            campaign_min_members: 3,
            campaign_window_secs: 86_400,
            volume_warmup_hours: 24,
            volume_factor_pct: 500,
            volume_min_events: 1_000,
            max_sources: 200_000,
        }
    }
}

/// Services people log in to or administer remotely: repeated attempts on them are password
/// guessing. (Web ports are left out: a busy website is not an attack.)
pub fn is_remote_access(port: u16) -> bool {
    matches!(
        port,
        21 | 22 | 23 | 139 | 445 | 1194 | 1433 | 1521 | 1723 | 3306 | 3389 | 5432 | 5900
            ..=5903 | 6379 | 10443 | 27017
    )
}

/// Most distinct ports or hosts remembered per source (enough to cross any sane threshold).
const SET_CAP: usize = 256;
/// Recent batches remembered for idempotency.
const SEEN_BATCHES: usize = 65_536;

#[derive(Debug, Default)]
struct SourceState {
    window_start: i64,
    last: i64,
    /// Distinct ports and hosts in the window, kept only up to their threshold (a set is
    /// never searched once full: the scan has crossed), so a short list beats a hash set.
    ports: Vec<u16>,
    hosts: Vec<IpAddr>,
    /// The scan alert is active until this time (extended by further activity).
    scan_until: i64,
    /// Per remote-access port (a handful): (port, window start, attempts, allowed attempts).
    brute: Vec<(u16, i64, u64, u64)>,
}

impl SourceState {
    /// Takes over a forgotten source's allocations, emptied.
    fn reuse(&mut self, gone: SourceState) {
        let SourceState {
            mut ports,
            mut hosts,
            mut brute,
            ..
        } = gone;
        ports.clear();
        hosts.clear();
        brute.clear();
        (self.ports, self.hosts, self.brute) = (ports, hosts, brute);
    }
}

/// Adds `v` to a list of distinct values holding at most `cap`.
fn add_distinct<T: PartialEq>(list: &mut Vec<T>, v: T, cap: usize) {
    if list.len() < cap && !list.contains(&v) {
        list.push(v);
    }
}

#[derive(Debug, Default)]
struct VolumeState {
    hour: i64,
    count: u64,
    /// Exponentially weighted mean of past hours' counts.
    baseline: f64,
    hours: u32,
    alerted_hour: i64,
}

/// The stateful detections' memory. Not shared between hubs: with several hub workers, each
/// member's batches must go to one worker (the scale-out design partitions by member), and
/// campaigns take the store's count of members across processes (`observe_with_reach`).
#[derive(Debug)]
pub struct Engine {
    t: Thresholds,
    sources: HashMap<(i64, IpAddr), SourceState, Fast>,
    order: VecDeque<(i64, IpAddr)>,
    /// Source → (member, last time seen), one entry per member.
    national: HashMap<IpAddr, Vec<(i64, i64)>, Fast>,
    volume: HashMap<i64, VolumeState, Fast>,
    seen: HashSet<(i64, String), Fast>,
    seen_order: VecDeque<(i64, String)>,
}

impl Engine {
    /// An engine with these thresholds.
    pub fn new(t: Thresholds) -> Engine {
        Engine {
            t,
            sources: HashMap::default(),
            order: VecDeque::new(),
            national: HashMap::default(),
            volume: HashMap::default(),
            seen: HashSet::default(),
            seen_order: VecDeque::new(),
        }
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> &Thresholds {
        &self.t
    }

    /// Sources currently remembered.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Runs the stateful detections over one stored batch of one member's events (in the order
    /// given). Returns nothing for a batch already seen. For a hub that is the only process:
    /// campaigns are counted from what this engine saw.
    pub fn observe(
        &mut self,
        member: i64,
        collector: i64,
        batch_id: &str,
        events: &[Event],
    ) -> Vec<Observation> {
        self.observe_with_reach(member, collector, batch_id, events, &HashMap::new())
    }

    /// [`Engine::observe`] where other processes see other members: `others` gives, per source,
    /// how many members other than this one saw it within the campaign window by the store's
    /// count (see [`crate::campaign`]). A source is a campaign when this engine's own count or
    /// the store's reaches the threshold.
    pub fn observe_with_reach(
        &mut self,
        member: i64,
        collector: i64,
        batch_id: &str,
        events: &[Event],
        others: &HashMap<IpAddr, u32>,
    ) -> Vec<Observation> {
        let key = (collector, batch_id.to_owned());
        if !self.seen.insert(key.clone()) {
            return Vec::new();
        }
        self.seen_order.push_back(key);
        if self.seen_order.len() > SEEN_BATCHES {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            self.volume(member, i, e, &mut out);
            if e.direction != Direction::Inbound {
                continue;
            }
            self.exposed(i, e, &mut out);
            self.per_source(member, i, e, &mut out);
            self.campaign(member, i, e, others, &mut out);
        }
        out
    }

    fn exposed(&mut self, i: usize, e: &Event, out: &mut Vec<Observation>) {
        let Some(port) = e.dst_port else { return };
        if !e.action.is_allowed()
            || !services::is_risky(port)
            || matches!(e.protocol, IpProto::ICMP | IpProto::ICMPV6)
        {
            return;
        }
        let kind = AlertKind::ExposedService;
        out.push(Observation {
            kind,
            severity: Severity::High,
            // One alert per exposed service (address and port), whoever connects.
            dedup_key: format!("{}|{}|{port}", kind.as_str(), e.dst_ip),
            subject_ip: e.dst_ip,
            lists: Vec::new(),
            labels: Vec::new(),
            event_index: i,
        });
    }

    fn per_source(&mut self, member: i64, i: usize, e: &Event, out: &mut Vec<Observation>) {
        let t = &self.t;
        let k = (member, e.src_ip);
        let s = if self.sources.contains_key(&k) {
            self.sources.get_mut(&k).expect("just found")
        } else {
            let mut fresh = SourceState::default();
            if self.sources.len() >= t.max_sources {
                // Forget the source remembered longest ago; its lists' memory serves the new
                // one (under a flood of sources this runs for every event).
                while let Some(old) = self.order.pop_front() {
                    if let Some(gone) = self.sources.remove(&old) {
                        fresh.reuse(gone);
                        break;
                    }
                }
            }
            self.order.push_back(k);
            self.sources.entry(k).or_insert(fresh)
        };
        let now = e.time_ms;
        // Port scan: distinct ports or hosts within the window.
        let scan_window = t.scan_window_secs as i64 * 1000;
        if now - s.window_start > scan_window || now < s.window_start {
            s.window_start = now;
            s.ports.clear();
            s.hosts.clear();
        }
        if let Some(p) = e.dst_port {
            add_distinct(&mut s.ports, p, t.scan_min_ports.min(SET_CAP));
        }
        add_distinct(&mut s.hosts, e.dst_ip, t.scan_min_hosts.min(SET_CAP));
        s.last = now;
        let crossing = s.ports.len() >= t.scan_min_ports || s.hosts.len() >= t.scan_min_hosts;
        if crossing || now <= s.scan_until {
            if crossing {
                s.scan_until = now + scan_window;
            }
            let kind = AlertKind::PortScan;
            let severity = if e.action.is_allowed() {
                Severity::Medium
            } else {
                Severity::Low
            };
            out.push(Observation {
                kind,
                severity,
                dedup_key: format!("{}|{}", kind.as_str(), e.src_ip),
                subject_ip: e.src_ip,
                lists: Vec::new(),
                labels: Vec::new(),
                event_index: i,
            });
        }
        // Brute force: repeated attempts on one remote-access service.
        let Some(port) = e.dst_port.filter(|p| is_remote_access(*p)) else {
            return;
        };
        let brute_window = t.brute_window_secs as i64 * 1000;
        let b = match s.brute.iter().position(|b| b.0 == port) {
            Some(at) => &mut s.brute[at],
            None => {
                s.brute.push((port, now, 0, 0));
                s.brute.last_mut().expect("just pushed")
            }
        };
        if now - b.1 > brute_window || now < b.1 {
            *b = (port, now, 0, 0);
        }
        let n = e.count.max(1) as u64;
        b.2 += n;
        if e.action.is_allowed() {
            b.3 += n;
        }
        if b.2 >= t.brute_min_attempts {
            let kind = AlertKind::BruteForce;
            // Attempts the firewall let through reach the login prompt: act today.
            let severity = if b.3 > 0 {
                Severity::High
            } else {
                Severity::Low
            };
            out.push(Observation {
                kind,
                severity,
                dedup_key: format!(
                    "{}|{}|{port}|{}",
                    kind.as_str(),
                    e.src_ip,
                    severity.as_str()
                ),
                subject_ip: e.src_ip,
                lists: Vec::new(),
                labels: Vec::new(),
                event_index: i,
            });
        }
    }

    fn campaign(
        &mut self,
        member: i64,
        i: usize,
        e: &Event,
        others: &HashMap<IpAddr, u32>,
        out: &mut Vec<Observation>,
    ) {
        if !crate::campaign::counts(e) {
            return;
        }
        let window = self.t.campaign_window_secs as i64 * 1000;
        let now = e.time_ms;
        // The store's count includes this member; it may lag this engine's by the batches in
        // flight, and this engine's misses the members that other processes hold.
        let stored = 1 + others.get(&e.src_ip).copied().unwrap_or(0) as usize;
        let mut seen_here = 0;
        if !self.national.contains_key(&e.src_ip) && self.national.len() >= self.t.max_sources {
            // Bounded: drop entries not seen within the window, or, failing that, keep no memory
            // of this source (the store's count still applies).
            self.national
                .retain(|_, m| m.iter().any(|(_, t)| now - *t <= window));
        }
        if let Some(members) = self.national.get_mut(&e.src_ip) {
            match members.iter_mut().find(|(m, _)| *m == member) {
                Some((_, t)) => *t = now.max(*t),
                None => members.push((member, now)),
            }
            members.retain(|(_, t)| now - *t <= window);
            seen_here = members.len();
        } else if self.national.len() < self.t.max_sources {
            self.national.insert(e.src_ip, vec![(member, now)]);
            seen_here = 1;
        }
        if crate::campaign::alerts(e) && seen_here.max(stored) >= self.t.campaign_min_members {
            let kind = AlertKind::Campaign;
            out.push(Observation {
                kind,
                severity: Severity::Medium,
                dedup_key: format!("{}|{}", kind.as_str(), e.src_ip),
                subject_ip: e.src_ip,
                lists: Vec::new(),
                labels: Vec::new(),
                event_index: i,
            });
        }
    }

    fn volume(&mut self, member: i64, i: usize, e: &Event, out: &mut Vec<Observation>) {
        let hour = e.time_ms.div_euclid(3_600_000);
        let v = self.volume.entry(member).or_insert_with(|| VolumeState {
            hour,
            alerted_hour: i64::MIN,
            ..VolumeState::default()
        });
        if hour < v.hour {
            return; // late data does not rewrite history
        }
        if hour > v.hour {
            // Close the hours that passed (empty ones count as zero), then start this one.
            let gap = (hour - v.hour).min(24 * 7) as u32;
            for k in 0..gap {
                let c = if k == 0 { v.count as f64 } else { 0.0 };
                v.baseline = if v.hours == 0 {
                    c
                } else {
                    v.baseline * 0.9 + c * 0.1
                };
                v.hours += 1;
            }
            v.hour = hour;
            v.count = 0;
        }
        v.count += e.count.max(1) as u64;
        let limit = (v.baseline * self.t.volume_factor_pct as f64 / 100.0)
            .max(self.t.volume_min_events as f64);
        if v.hours >= self.t.volume_warmup_hours && v.count as f64 > limit && v.alerted_hour != hour
        {
            v.alerted_hour = hour;
            let kind = AlertKind::VolumeAnomaly;
            out.push(Observation {
                kind,
                severity: Severity::Medium,
                dedup_key: format!("{}|{hour}", kind.as_str()),
                subject_ip: e.dst_ip,
                lists: Vec::new(),
                labels: Vec::new(),
                event_index: i,
            });
        }
    }

    /// The member's usual events per hour, once learnt (for the alert's words).
    pub fn baseline(&self, member: i64) -> Option<f64> {
        self.volume
            .get(&member)
            .filter(|v| v.hours >= self.t.volume_warmup_hours)
            .map(|v| v.baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ev, kinds, T};
    use watchhouse_event::Action;

    #[test]
    fn a_source_taking_a_forgotten_ones_place_starts_empty() {
        // One source remembered: each new source forgets the last and takes over its lists.
        let mut e = Engine::new(Thresholds {
            max_sources: 1,
            ..Thresholds::default()
        });
        let ports = |src: &str, from: u16, n: u16, t: i64| -> Vec<Event> {
            (0..n)
                .map(|p| ev(src, "198.51.100.1", from + p, Action::Deny, t + p as i64))
                .collect()
        };
        // Nine ports from A (one short of a scan), then B: B's one port is not A's tenth.
        assert_eq!(
            kinds(
                &e.observe(1, 1, "a", &ports("203.0.113.5", 20, 9, T)),
                AlertKind::PortScan
            ),
            0
        );
        assert_eq!(
            kinds(
                &e.observe(1, 1, "b", &ports("203.0.113.6", 99, 1, T + 10)),
                AlertKind::PortScan
            ),
            0
        );
        assert_eq!(e.tracked_sources(), 1);
        // A comes back forgotten: its next port is its first again.
        assert_eq!(
            kinds(
                &e.observe(1, 1, "c", &ports("203.0.113.5", 40, 1, T + 20)),
                AlertKind::PortScan
            ),
            0
        );
        // And a full ten from B still is a scan.
        assert_eq!(
            kinds(
                &e.observe(1, 1, "d", &ports("203.0.113.6", 200, 10, T + 30)),
                AlertKind::PortScan
            ),
            1
        );
    }

    #[test]
    fn port_scan_fires_at_the_threshold_and_not_below() {
        let mut e = Engine::new(Thresholds::default());
        let nine: Vec<Event> = (0..9)
            .map(|p| {
                ev(
                    "203.0.113.5",
                    "198.51.100.1",
                    20 + p,
                    Action::Deny,
                    T + p as i64,
                )
            })
            .collect();
        assert_eq!(kinds(&e.observe(1, 1, "a", &nine), AlertKind::PortScan), 0);
        let tenth = vec![ev("203.0.113.5", "198.51.100.1", 99, Action::Deny, T + 20)];
        let obs = e.observe(1, 1, "b", &tenth);
        assert_eq!(kinds(&obs, AlertKind::PortScan), 1);
        assert_eq!(obs[0].severity, Severity::Low);
        // A slow scan (one port a minute) never fills a window.
        let mut e = Engine::new(Thresholds::default());
        let slow: Vec<Event> = (0..30)
            .map(|p| {
                ev(
                    "203.0.113.6",
                    "198.51.100.1",
                    20 + p,
                    Action::Deny,
                    T + p as i64 * 61_000,
                )
            })
            .collect();
        assert_eq!(kinds(&e.observe(1, 1, "c", &slow), AlertKind::PortScan), 0);
        // A sweep: one port across many hosts.
        let mut e = Engine::new(Thresholds::default());
        let sweep: Vec<Event> = (1..=12)
            .map(|h| {
                ev(
                    "203.0.113.7",
                    &format!("198.51.100.{h}"),
                    445,
                    Action::Deny,
                    T + h,
                )
            })
            .collect();
        assert!(kinds(&e.observe(1, 1, "d", &sweep), AlertKind::PortScan) >= 1);
    }

    #[test]
    fn a_retried_batch_counts_once() {
        let mut e = Engine::new(Thresholds::default());
        let half: Vec<Event> = (0..6)
            .map(|p| {
                ev(
                    "203.0.113.5",
                    "198.51.100.1",
                    20 + p,
                    Action::Deny,
                    T + p as i64,
                )
            })
            .collect();
        e.observe(1, 1, "same", &half);
        let obs = e.observe(1, 1, "same", &half);
        assert!(obs.is_empty());
        let ports: Vec<Event> = (0..6)
            .map(|p| ev("203.0.113.5", "198.51.100.1", 20 + p, Action::Deny, T + 10))
            .collect();
        assert_eq!(
            kinds(&e.observe(1, 1, "next", &ports), AlertKind::PortScan),
            0,
            "same ports again: still 6 distinct"
        );
    }

    #[test]
    fn brute_force_needs_repeated_attempts_on_a_login_service() {
        let mut e = Engine::new(Thresholds::default());
        let web: Vec<Event> = (0..50)
            .map(|i| ev("203.0.113.8", "198.51.100.1", 443, Action::Allow, T + i))
            .collect();
        assert_eq!(
            kinds(&e.observe(1, 1, "w", &web), AlertKind::BruteForce),
            0,
            "a busy website is not an attack"
        );
        let ssh: Vec<Event> = (0..19)
            .map(|i| {
                ev(
                    "203.0.113.8",
                    "198.51.100.1",
                    22,
                    Action::Allow,
                    T + i * 1000,
                )
            })
            .collect();
        assert_eq!(
            kinds(&e.observe(1, 1, "s1", &ssh), AlertKind::BruteForce),
            0
        );
        let more = vec![ev(
            "203.0.113.8",
            "198.51.100.1",
            22,
            Action::Allow,
            T + 30_000,
        )];
        let obs = e.observe(1, 1, "s2", &more);
        let b: Vec<&Observation> = obs
            .iter()
            .filter(|o| o.kind == AlertKind::BruteForce)
            .collect();
        assert_eq!((b.len(), b[0].severity), (1, Severity::High));
        // An aggregated record counts for its repeats.
        let mut e = Engine::new(Thresholds::default());
        let mut agg = ev("203.0.113.9", "198.51.100.1", 3389, Action::Deny, T);
        agg.count = 25;
        let obs = e.observe(1, 1, "agg", &[agg]);
        assert_eq!(
            obs.iter()
                .find(|o| o.kind == AlertKind::BruteForce)
                .unwrap()
                .severity,
            Severity::Low
        );
    }

    #[test]
    fn exposed_services_are_allowed_inbound_risky_ports() {
        let mut e = Engine::new(Thresholds::default());
        let obs = e.observe(
            1,
            1,
            "x",
            &[
                ev("203.0.113.10", "198.51.100.1", 3389, Action::Allow, T),
                ev("203.0.113.10", "198.51.100.1", 443, Action::Allow, T),
                ev("203.0.113.10", "198.51.100.1", 445, Action::Deny, T),
            ],
        );
        let x: Vec<&Observation> = obs
            .iter()
            .filter(|o| o.kind == AlertKind::ExposedService)
            .collect();
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].subject_ip.to_string(), "198.51.100.1");
        assert_eq!(x[0].dedup_key, "exposed_service|198.51.100.1|3389");
    }

    #[test]
    fn campaign_needs_several_members_within_the_window() {
        let mut e = Engine::new(Thresholds::default());
        let hit = |t| vec![ev("203.0.113.11", "198.51.100.1", 22, Action::Allow, t)];
        let blocked = |t| vec![ev("203.0.113.11", "198.51.100.1", 22, Action::Deny, t)];
        assert_eq!(
            kinds(&e.observe(1, 1, "1", &hit(T)), AlertKind::Campaign),
            0
        );
        // Blocked at the second member: it counts, nobody is told yet.
        assert_eq!(
            kinds(
                &e.observe(2, 2, "2", &blocked(T + 1000)),
                AlertKind::Campaign
            ),
            0
        );
        // Blocked at the third: a campaign, but that member's firewall did its job.
        assert_eq!(
            kinds(
                &e.observe(3, 3, "3", &blocked(T + 2000)),
                AlertKind::Campaign
            ),
            0
        );
        assert_eq!(
            kinds(&e.observe(3, 3, "3b", &hit(T + 2500)), AlertKind::Campaign),
            1,
            "through at the third member"
        );
        assert_eq!(
            kinds(&e.observe(1, 1, "4", &hit(T + 3000)), AlertKind::Campaign),
            1,
            "member 1 hit again"
        );
        // A day later, the old sightings have lapsed.
        assert_eq!(
            kinds(
                &e.observe(4, 4, "5", &hit(T + 2 * 86_400_000)),
                AlertKind::Campaign
            ),
            0
        );
    }

    #[test]
    fn campaign_takes_the_stores_count_of_members_other_processes_hold() {
        let mut e = Engine::new(Thresholds::default());
        let hit = |t| vec![ev("203.0.113.11", "198.51.100.1", 22, Action::Allow, t)];
        let src: IpAddr = "203.0.113.11".parse().unwrap();
        // This engine has seen the source only here; the store knows one other member.
        let one: HashMap<IpAddr, u32> = [(src, 1)].into();
        assert_eq!(
            kinds(
                &e.observe_with_reach(1, 1, "1", &hit(T), &one),
                AlertKind::Campaign
            ),
            0
        );
        // Two others in the store: with this member, three.
        let two: HashMap<IpAddr, u32> = [(src, 2)].into();
        assert_eq!(
            kinds(
                &e.observe_with_reach(1, 1, "2", &hit(T + 1), &two),
                AlertKind::Campaign
            ),
            1
        );
        // A private address at several members is several machines, never a campaign.
        let private = vec![ev("10.0.0.5", "198.51.100.1", 22, Action::Allow, T)];
        let many: HashMap<IpAddr, u32> = [("10.0.0.5".parse().unwrap(), 9)].into();
        for m in 1..=4 {
            assert_eq!(
                kinds(
                    &e.observe_with_reach(m, m, &format!("p{m}"), &private, &many),
                    AlertKind::Campaign
                ),
                0
            );
        }
    }

    #[test]
    fn volume_anomaly_after_a_learnt_baseline() {
        let mut e = Engine::new(Thresholds::default());
        let hour = 3_600_000;
        // 30 hours of about 200 events an hour.
        for h in 0..30 {
            let mut x = ev(
                "203.0.113.12",
                "198.51.100.1",
                22,
                Action::Deny,
                T + h * hour,
            );
            x.count = 200;
            assert_eq!(
                kinds(
                    &e.observe(1, 1, &format!("h{h}"), &[x]),
                    AlertKind::VolumeAnomaly
                ),
                0
            );
        }
        assert!((e.baseline(1).unwrap() - 200.0).abs() < 1.0);
        // Then 5,000 in one hour.
        let mut spike = ev(
            "203.0.113.13",
            "198.51.100.1",
            80,
            Action::Deny,
            T + 30 * hour,
        );
        spike.count = 5_000;
        let obs = e.observe(1, 1, "spike", &[spike.clone()]);
        assert_eq!(kinds(&obs, AlertKind::VolumeAnomaly), 1);
        // Once per hour.
        spike.time_ms += 1;
        assert_eq!(
            kinds(
                &e.observe(1, 1, "spike2", &[spike]),
                AlertKind::VolumeAnomaly
            ),
            0
        );
        // No baseline yet: no alert.
        let mut fresh = Engine::new(Thresholds::default());
        let mut big = ev("203.0.113.13", "198.51.100.1", 80, Action::Deny, T);
        big.count = 100_000;
        assert_eq!(
            kinds(&fresh.observe(1, 1, "b", &[big]), AlertKind::VolumeAnomaly),
            0
        );
    }

    #[test]
    fn memory_is_bounded_under_a_flood_of_sources() {
        let mut e = Engine::new(Thresholds {
            max_sources: 1000,
            ..Thresholds::default()
        });
        for b in 0..50u32 {
            let evs: Vec<Event> = (0..100u32)
                .map(|i| {
                    let a = std::net::Ipv4Addr::from(0x0a00_0000 + b * 100 + i);
                    let mut x = ev(
                        "203.0.113.1",
                        "198.51.100.1",
                        22,
                        Action::Deny,
                        T + i as i64,
                    );
                    x.src_ip = IpAddr::V4(a);
                    x
                })
                .collect();
            e.observe(1, 1, &b.to_string(), &evs);
        }
        assert!(e.tracked_sources() <= 1000);
        assert!(e.national.len() <= 1000);
    }
}
