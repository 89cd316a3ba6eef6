//! Detections: from normalised events and the intelligence matcher to observations, and from
//! an alert's facts to the plain-English words a member reads.
//!
//! Pure: no IO, no clock (time arrives in the events), no async. The hub runs [`detect`] on every
//! ingested batch inside the same transaction that stores the batch, so an alert can never exist
//! without its evidence, nor evidence be stored twice.
//!
//! v0 has one detection, `listed_source_inbound`. Further detections (port scans, brute force,
//! campaigns, …) are added as further [`AlertKind`]s; each produces [`Observation`]s keyed for
//! deduplication, so the store's alert upsert stays the same.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use watchhouse_event::{Direction, Event};
use watchhouse_intel::{Match, Matcher, Tlp};

pub mod campaign;
pub mod engine;
pub mod services;
#[cfg(test)]
mod testing;

pub use engine::{Engine, Thresholds};

/// How urgently a member should act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information; no action needed.
    Low,
    /// Worth a look this week.
    Medium,
    /// Act today.
    High,
    /// Act now.
    Critical,
}

impl Severity {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses [`Severity::as_str`].
    pub fn from_name(s: &str) -> Option<Severity> {
        Some(match s {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// What kind of thing was detected. The stable name is the `kind` label in metrics and APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Inbound traffic from an address on a known-bad list.
    ListedSourceInbound,
    /// A device on the member's network contacted an address on a known-bad list.
    ListedDestinationOutbound,
    /// One source probing many ports or hosts within a window.
    PortScan,
    /// Repeated attempts on a remote-access or administration service.
    BruteForce,
    /// Allowed inbound connections from the internet to a risky service.
    ExposedService,
    /// One source seen at several members.
    Campaign,
    /// A sudden rise over the member's own usual volume.
    VolumeAnomaly,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: &'static [AlertKind] = &[
        AlertKind::ListedSourceInbound,
        AlertKind::ListedDestinationOutbound,
        AlertKind::PortScan,
        AlertKind::BruteForce,
        AlertKind::ExposedService,
        AlertKind::Campaign,
        AlertKind::VolumeAnomaly,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ListedSourceInbound => "listed_source_inbound",
            AlertKind::ListedDestinationOutbound => "listed_destination_outbound",
            AlertKind::PortScan => "port_scan",
            AlertKind::BruteForce => "brute_force",
            AlertKind::ExposedService => "exposed_service",
            AlertKind::Campaign => "campaign",
            AlertKind::VolumeAnomaly => "volume_anomaly",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::ListedSourceInbound => "Known attacker, incoming",
            AlertKind::ListedDestinationOutbound => "Device contacting a known criminal server",
            AlertKind::PortScan => "Scan of your network",
            AlertKind::BruteForce => "Password guessing",
            AlertKind::ExposedService => "Risky service open to the internet",
            AlertKind::Campaign => "Attacker targeting several organisations",
            AlertKind::VolumeAnomaly => "Unusual amount of traffic",
        }
    }

    /// Parses [`AlertKind::as_str`].
    pub fn from_name(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// One event that a detection fired on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Which detection.
    pub kind: AlertKind,
    /// How serious.
    pub severity: Severity,
    /// Deduplication key: observations with the same key (for the same member, within the
    /// deduplication window) belong to one alert.
    pub dedup_key: String,
    /// The address the alert is about.
    pub subject_ip: IpAddr,
    /// Names of the lists that matched.
    pub lists: Vec<String>,
    /// Why each list has it: category, confidence and TLP, per feed.
    pub labels: Vec<ObservedLabel>,
    /// Index of the event in the batch passed to [`detect`].
    pub event_index: usize,
}

/// One feed's reason for listing an address, carried from the matcher into the alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObservedLabel {
    /// Feed name.
    pub feed: String,
    /// What the feed says it is (`botnet_c2`, `attacks`, …).
    pub category: String,
    /// 0–100.
    pub confidence: u8,
    /// Sharing restriction of this piece of intelligence.
    pub tlp: Tlp,
}

/// The labels of a match, as owned values.
pub fn observed_labels(matcher: &Matcher, hit: &Match<'_>) -> Vec<ObservedLabel> {
    hit.labels()
        .iter()
        .map(|l| ObservedLabel {
            feed: matcher.feed(l.feed).name.clone(),
            category: matcher.category(*l).to_owned(),
            confidence: l.confidence,
            tlp: l.tlp,
        })
        .collect()
}

/// Merges labels (one per feed and category, highest confidence, most restrictive TLP).
pub fn merge_labels(into: &mut Vec<ObservedLabel>, more: &[ObservedLabel]) {
    for l in more {
        match into
            .iter_mut()
            .find(|x| x.feed == l.feed && x.category == l.category)
        {
            Some(x) => {
                x.confidence = x.confidence.max(l.confidence);
                x.tlp = x.tlp.max(l.tlp);
            }
            None => into.push(l.clone()),
        }
    }
    into.sort();
}

/// Runs every detection over a batch of one member's events.
pub fn detect(events: &[Event], matcher: &Matcher) -> Vec<Observation> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.direction == Direction::Outbound {
            // A listed name the device asked for (HTTP Host, TLS SNI, DNS), where the log
            // carries it and the address itself is not listed.
            let by_name = if matcher.contains(e.dst_ip) {
                None
            } else {
                e.url
                    .as_deref()
                    .and_then(|u| matcher.lookup_url(u))
                    .or_else(|| e.host.as_deref().and_then(|h| matcher.lookup_domain(h)))
            };
            if let Some(hit) = by_name {
                let kind = AlertKind::ListedDestinationOutbound;
                out.push(Observation {
                    kind,
                    severity: Severity::Critical,
                    dedup_key: format!(
                        "{}|{}|{}",
                        kind.as_str(),
                        e.host.as_deref().unwrap_or(""),
                        e.src_ip
                    ),
                    subject_ip: e.dst_ip,
                    lists: hit.feed_names().into_iter().map(str::to_owned).collect(),
                    labels: observed_labels(matcher, &hit),
                    event_index: i,
                });
                continue;
            }
            if let Some(hit) = matcher.lookup(e.dst_ip) {
                let kind = AlertKind::ListedDestinationOutbound;
                out.push(Observation {
                    kind,
                    severity: Severity::Critical,
                    // One alert per internal device and destination.
                    dedup_key: format!("{}|{}|{}", kind.as_str(), e.dst_ip, e.src_ip),
                    subject_ip: e.dst_ip,
                    lists: hit.feed_names().into_iter().map(str::to_owned).collect(),
                    labels: observed_labels(matcher, &hit),
                    event_index: i,
                });
            }
            continue;
        }
        if e.direction != Direction::Inbound {
            continue;
        }
        if let Some(hit) = matcher.lookup(e.src_ip) {
            let severity = if e.action.is_allowed() {
                Severity::High
            } else {
                Severity::Low
            };
            let kind = AlertKind::ListedSourceInbound;
            out.push(Observation {
                kind,
                severity,
                dedup_key: format!("{}|{}|{}", kind.as_str(), e.src_ip, severity.as_str()),
                subject_ip: e.src_ip,
                lists: hit.feed_names().into_iter().map(str::to_owned).collect(),
                labels: observed_labels(matcher, &hit),
                event_index: i,
            });
        }
    }
    out
}

/// The facts an alert's words are written from (kept by the store, grown as events arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFacts {
    /// Which detection.
    pub kind: AlertKind,
    /// How serious.
    pub severity: Severity,
    /// The address the alert is about.
    pub subject_ip: IpAddr,
    /// Lists it is on.
    pub lists: Vec<String>,
    /// Destination ports seen (distinct, capped).
    pub ports: Vec<u16>,
    /// Number of events behind the alert.
    pub event_count: u64,
}

/// What the member reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertText {
    /// One line.
    pub title: String,
    /// What this means, for someone with no security training.
    pub what_it_means: String,
    /// Numbered steps.
    pub what_to_do: Vec<String>,
}

fn port_phrase(ports: &[u16]) -> String {
    match ports {
        [] => "your network".to_owned(),
        [p] => format!("port {p} ({})", services::describe(*p)),
        [init @ .., last] if init.len() < 4 => {
            let init: Vec<String> = init.iter().map(|p| p.to_string()).collect();
            format!("ports {} and {last}", init.join(", "))
        }
        _ => format!("{} different ports", ports.len()),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Writes the plain-English text for an alert.
pub fn describe(f: &AlertFacts) -> AlertText {
    let lists = match f.lists.as_slice() {
        [] => "a known-attacker list".to_owned(),
        [one] => format!("a known-attacker list ({one})"),
        many => format!("{} known-attacker lists ({})", many.len(), many.join(", ")),
    };
    let times = if f.event_count == 1 {
        "once".to_owned()
    } else {
        format!("{} times", f.event_count)
    };
    let service = f
        .ports
        .first()
        .map(|p| services::describe(*p))
        .unwrap_or("a service");
    match (f.kind, f.severity) {
        (AlertKind::PortScan, sev) => {
            let through = sev >= Severity::Medium;
            AlertText {
                title: format!("Someone scanned your network for open doors: {}", f.subject_ip),
                what_it_means: format!(
                    "The internet address {} tried {} within a minute ({times} in all). Automated tools \
                     do this to find services they can attack. {}",
                    f.subject_ip,
                    port_phrase(&f.ports),
                    if through {
                        "Your firewall let some of these attempts through, so something answered."
                    } else {
                        "Your firewall blocked them: this is common and shows it doing its job."
                    }
                ),
                what_to_do: if through {
                    vec![
                        "Ask whoever looks after your IT which of these services need to be reachable from the internet, and close the rest on your firewall.".to_owned(),
                        "Make sure what stays open is fully updated and protected by strong passwords and, where possible, two-step sign-in.".to_owned(),
                        format!("Block {} on your firewall (it is in your Watchhouse blocklist).", f.subject_ip),
                    ]
                } else {
                    vec![
                        "Nothing urgent. Watchhouse will tell you if the scanner gets through or comes back to try passwords.".to_owned(),
                        format!("If you want to, block {} on your firewall.", f.subject_ip),
                    ]
                },
            }
        }
        (AlertKind::BruteForce, Severity::High | Severity::Critical) => AlertText {
            title: format!("Someone is trying passwords on your {service}: {}", f.subject_ip),
            what_it_means: format!(
                "The internet address {} connected to {service} {times} within a few minutes. That is \
                 what password-guessing tools do. Your firewall let the connections through, so the \
                 attacker reached the sign-in prompt.",
                f.subject_ip
            ),
            what_to_do: vec![
                format!("Check that every account on {service} has a strong, unique password and, where possible, two-step sign-in."),
                format!("If {service} need not be open to the whole internet, close it on your firewall or put it behind a VPN."),
                format!("Block {} on your firewall now.", f.subject_ip),
                "Look for sign-ins you do not recognise. If you find any, disconnect the computer from the network (do not wipe it) and call your police force's cyber protect team.".to_owned(),
            ],
        },
        (AlertKind::BruteForce, _) => AlertText {
            title: format!("Repeated attempts on your {service} were blocked: {}", f.subject_ip),
            what_it_means: format!(
                "The internet address {} tried to reach {service} {times} within a few minutes, as \
                 password-guessing tools do. Your firewall blocked every attempt.",
                f.subject_ip
            ),
            what_to_do: vec![
                "Nothing urgent: the firewall is doing its job.".to_owned(),
                format!("If you want to, block {} on your firewall.", f.subject_ip),
            ],
        },
        (AlertKind::ExposedService, _) => AlertText {
            title: format!("{} on {} is open to the whole internet", capitalise(service), f.subject_ip),
            what_it_means: format!(
                "Your firewall let connections from the internet reach {service} on your address {} \
                 ({times}). Criminals search the whole internet for services like this and try to \
                 break in, often within hours of finding one.",
                f.subject_ip
            ),
            what_to_do: vec![
                format!("Ask whoever looks after your IT whether {service} really needs to be reachable from anywhere on the internet."),
                "If it was opened by mistake, close it on your firewall today.".to_owned(),
                "If it must stay open, allow only known addresses or put it behind a VPN, keep it fully updated, and use strong passwords with two-step sign-in.".to_owned(),
            ],
        },
        (AlertKind::Campaign, _) => {
            let target = port_phrase(&f.ports);
            AlertText {
                title: format!(
                    "An address attacking several organisations got through your firewall: {} reached {target}",
                    f.subject_ip
                ),
                what_it_means: format!(
                    "The internet address {} has been attacking several Watchhouse members in the \
                     last day, and your firewall let it connect to {target} ({times}). Police can see \
                     the whole picture and are looking at it. It does not mean you have been hacked.",
                    f.subject_ip
                ),
                what_to_do: vec![
                    format!("Block {} on your firewall (it is in your Watchhouse blocklist).", f.subject_ip),
                    format!(
                        "Ask whoever looks after your IT whether {service} needs to be reachable from the internet, and that it is fully updated."
                    ),
                    "If you see anything unusual (new accounts, files you cannot open, a ransom note), disconnect the affected computer and call your police force's cyber protect team.".to_owned(),
                ],
            }
        }
        (AlertKind::VolumeAnomaly, _) => AlertText {
            title: "Much more traffic than usual reached your firewall".to_owned(),
            what_it_means: format!(
                "In one hour your firewall recorded far more events than it usually does ({times} \
                 behind this alert). This can be a scan or an attack in progress, or a change on your \
                 own network such as a new service or a misconfigured device."
            ),
            what_to_do: vec![
                "Look at the top sources and most targeted services on your overview page: one address or one service usually stands out.".to_owned(),
                "If nobody changed anything on your network, ask whoever looks after your IT to check.".to_owned(),
                "If your internet connection is slow or services are down, tell your internet provider and your police force's cyber protect team.".to_owned(),
            ],
        },
        (AlertKind::ListedDestinationOutbound, _) => AlertText {
            title: format!(
                "A device on your network contacted a known criminal server: {}",
                f.subject_ip
            ),
            what_it_means: format!(
                "A computer or device inside your network connected to {} ({times}). That address is \
                 on {lists}, used to control infected machines or to receive stolen data. The device \
                 may be infected with malware. The evidence below shows which of your addresses it was.",
                f.subject_ip
            ),
            what_to_do: vec![
                "Find the device: the evidence below gives its internal address; your IT support or router can tell you which machine that is.".to_owned(),
                "Disconnect it from the network now (unplug the cable or turn off its Wi-Fi). Do not switch it off or wipe it: that destroys evidence.".to_owned(),
                "Call your IT support to check and clean it, and change any passwords used on it, from a different device.".to_owned(),
                "Report it: your police force's cyber protect team can see this alert and will help. If money or personal data may be involved, report it to Action Fraud as well.".to_owned(),
            ],
        },
        (AlertKind::ListedSourceInbound, Severity::High | Severity::Critical) => {
            let target = port_phrase(&f.ports);
            let service = f
                .ports
                .first()
                .map(|p| services::describe(*p))
                .unwrap_or("the service");
            AlertText {
                title: format!(
                    "A known attacker got through your firewall: {} reached {}",
                    f.subject_ip, target
                ),
                what_it_means: format!(
                    "The internet address {} is on {lists}. Your firewall let it connect to {target} \
                     ({times}). Attackers do this to look for weak passwords and unpatched software. \
                     It does not mean you have been hacked, but the door was open to them.",
                    f.subject_ip
                ),
                what_to_do: vec![
                    format!(
                        "Ask whoever looks after your IT whether {service} needs to be reachable from the internet. If not, close it on your firewall."
                    ),
                    "If it must stay open, make sure it is fully updated and protected by strong, unique passwords and, where possible, two-step sign-in.".to_owned(),
                    format!("Block {} on your firewall.", f.subject_ip),
                    "If you see anything unusual (new accounts, files you cannot open, a ransom note), disconnect the affected computer and call your police force's cyber protect team.".to_owned(),
                ],
            }
        }
        (AlertKind::ListedSourceInbound, _) => AlertText {
            title: format!(
                "Your firewall blocked a known attacker: {}",
                f.subject_ip
            ),
            what_it_means: format!(
                "The internet address {} is on {lists}. It tried to reach {} ({times}) and your \
                 firewall blocked it. This is common: it shows your firewall doing its job.",
                f.subject_ip,
                port_phrase(&f.ports)
            ),
            what_to_do: vec![
                "Nothing urgent. Watchhouse will warn you straight away if a known attacker ever gets through.".to_owned(),
                format!(
                    "If you want to, add {} to your firewall's block list.",
                    f.subject_ip
                ),
            ],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchhouse_event::Action;
    use watchhouse_intel::{parse_netset, ListInfo, MatcherBuilder};

    fn ev(src: &str, action: Action, direction: Direction) -> Event {
        let mut e = crate::testing::ev(src, "198.51.100.10", 3389, action, 0);
        e.src_port = Some(5555);
        e.direction = direction;
        e
    }

    fn matcher() -> Matcher {
        let mut b = MatcherBuilder::new();
        let (v, _) = parse_netset("203.0.113.0/24\n192.0.2.7\n");
        b.add_list(ListInfo::new("demo", "attacks"), v);
        b.build()
    }

    #[test]
    fn blocked_listed_source_is_low_allowed_is_high() {
        let events = vec![
            ev("203.0.113.9", Action::Drop, Direction::Inbound),
            ev("192.0.2.7", Action::Allow, Direction::Inbound),
            ev("8.8.8.8", Action::Allow, Direction::Inbound),
            ev("203.0.113.9", Action::Allow, Direction::Outbound),
        ];
        let obs = detect(&events, &matcher());
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].severity, Severity::Low);
        assert_eq!(obs[0].event_index, 0);
        assert_eq!(obs[1].severity, Severity::High);
        assert_eq!(obs[1].lists, vec!["demo".to_string()]);
        assert_ne!(obs[0].dedup_key, obs[1].dedup_key);
    }

    #[test]
    fn outbound_to_a_listed_destination_is_critical() {
        let mut e = ev("192.168.1.5", Action::Allow, Direction::Outbound);
        e.dst_ip = "203.0.113.66".parse().unwrap();
        let obs = detect(&[e], &matcher());
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].kind, AlertKind::ListedDestinationOutbound);
        assert_eq!(obs[0].severity, Severity::Critical);
        assert_eq!(obs[0].subject_ip.to_string(), "203.0.113.66");
        let t = describe(&AlertFacts {
            kind: obs[0].kind,
            severity: obs[0].severity,
            subject_ip: obs[0].subject_ip,
            lists: obs[0].lists.clone(),
            ports: vec![443],
            event_count: 1,
        });
        assert!(t.title.contains("criminal server"));
        assert!(t
            .what_to_do
            .iter()
            .any(|s| s.contains("Do not switch it off")));
        // An unlisted destination raises nothing.
        let mut quiet = ev("192.168.1.5", Action::Allow, Direction::Outbound);
        quiet.dst_ip = "8.8.8.8".parse().unwrap();
        assert!(detect(&[quiet], &matcher()).is_empty());
    }

    #[test]
    fn text_is_plain_and_names_the_service() {
        let f = AlertFacts {
            kind: AlertKind::ListedSourceInbound,
            severity: Severity::High,
            subject_ip: "192.0.2.7".parse().unwrap(),
            lists: vec!["demo".into()],
            ports: vec![3389],
            event_count: 3,
        };
        let t = describe(&f);
        assert!(t.title.contains("got through"));
        assert!(
            t.what_it_means.contains("Remote Desktop"),
            "{}",
            t.what_it_means
        );
        assert!(t.what_it_means.contains("3 times"));
        assert!(t.what_to_do.len() >= 3);
        let low = describe(&AlertFacts {
            severity: Severity::Low,
            ports: vec![22, 23, 80],
            ..f
        });
        assert!(low.title.contains("blocked"));
        assert!(
            low.what_it_means.contains("ports 22, 23 and 80"),
            "{}",
            low.what_it_means
        );
    }
}
