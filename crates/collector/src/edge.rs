//! The privacy filter at the edge: what may leave the member's network.
//!
//! Pure. An address is the member's own if it is in a private / non-internet range or in the
//! member's configured networks. Then:
//!
//! | source   | destination | verdict                                                   |
//! |----------|-------------|-----------------------------------------------------------|
//! | own      | own         | withheld (`internal`): never leaves the member's network |
//! | internet | own         | sent, inbound                                             |
//! | own      | internet    | sent as outbound if the member opted in **or the destination is on the watchlist the hub pushes** (a device calling a known command-and-control server must be reported); else withheld (`outbound`) |
//! | internet | internet    | the firewall's own direction decides; unknown is withheld (`unknown_direction`) |
//!
//! **Invariant: withheld events are counted, never sent.**

use std::net::IpAddr;
use std::sync::Arc;

use watchhouse_event::{Direction, Event};
use watchhouse_intel::{is_non_internet, Cidr, Matcher, NetSet};

/// What the filter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send, with this direction.
    Send(Direction),
    /// Keep on the member's network; the reason is counted.
    Withhold(&'static str),
}

/// The member's settings that drive the filter.
#[derive(Debug, Clone, Default)]
pub struct EdgePolicy {
    own: NetSet,
    send_outbound: bool,
    /// Known-bad destinations pushed by the hub.
    watchlist: Option<Arc<Matcher>>,
}

impl EdgePolicy {
    /// A policy from the member's networks (CIDR strings; invalid ones are returned as errors and
    /// ignored) and its outbound opt-in.
    pub fn new(networks: &[String], send_outbound: bool) -> (EdgePolicy, Vec<String>) {
        let mut nets = Vec::new();
        let mut errors = Vec::new();
        for n in networks {
            match n.trim().parse::<Cidr>() {
                Ok(c) => nets.push(c),
                Err(e) => errors.push(format!("member network `{n}`: {e}")),
            }
        }
        (
            EdgePolicy {
                own: NetSet::new(nets),
                send_outbound,
                watchlist: None,
            },
            errors,
        )
    }

    /// The same policy with a watchlist of known-bad destinations.
    pub fn with_watchlist(mut self, w: Option<Arc<Matcher>>) -> Self {
        self.watchlist = w;
        self
    }

    fn listed(&self, e: &Event) -> bool {
        self.watchlist.as_ref().is_some_and(|m| {
            m.contains(e.dst_ip)
                || e.url.as_deref().is_some_and(|u| m.lookup_url(u).is_some())
                || e.host
                    .as_deref()
                    .is_some_and(|h| m.lookup_domain(h).is_some())
        })
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        is_non_internet(ip) || self.own.contains(ip)
    }

    /// Classifies one event.
    pub fn classify(&self, e: &Event) -> Verdict {
        let outbound = if self.send_outbound || self.listed(e) {
            Verdict::Send(Direction::Outbound)
        } else {
            Verdict::Withhold("outbound")
        };
        match (self.is_own(e.src_ip), self.is_own(e.dst_ip)) {
            (true, true) => Verdict::Withhold("internal"),
            (false, true) => Verdict::Send(Direction::Inbound),
            (true, false) => outbound,
            (false, false) => match e.direction {
                Direction::Inbound => Verdict::Send(Direction::Inbound),
                Direction::Outbound => outbound,
                _ => Verdict::Withhold("unknown_direction"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchhouse_event::{Action, Format, IpProto};

    fn ev(src: &str, dst: &str, hint: Direction) -> Event {
        Event {
            time_ms: 0,
            last_ms: 0,
            action: Action::Deny,
            protocol: IpProto::TCP,
            src_ip: src.parse().unwrap(),
            src_port: Some(1),
            dst_ip: dst.parse().unwrap(),
            dst_port: Some(2),
            direction: hint,
            in_iface: None,
            out_iface: None,
            rule: None,
            device: None,
            format: Format::Netfilter,
            bytes: None,
            packets: None,
            count: 1,
            raw: String::new(),
            nat: None,
            product: None,
            host: None,
            url: None,
        }
    }

    #[test]
    fn verdicts() {
        let (p, errs) = EdgePolicy::new(&["198.51.100.0/28".into(), "nonsense".into()], false);
        assert_eq!(errs.len(), 1);
        let u = Direction::Unknown;
        assert_eq!(
            p.classify(&ev("192.168.1.2", "10.0.0.1", u)),
            Verdict::Withhold("internal")
        );
        assert_eq!(
            p.classify(&ev("192.168.1.2", "198.51.100.3", u)),
            Verdict::Withhold("internal")
        );
        assert_eq!(
            p.classify(&ev("203.0.113.9", "198.51.100.3", u)),
            Verdict::Send(Direction::Inbound)
        );
        assert_eq!(
            p.classify(&ev("192.168.1.2", "8.8.8.8", u)),
            Verdict::Withhold("outbound")
        );
        assert_eq!(
            p.classify(&ev("203.0.113.9", "8.8.8.8", Direction::Inbound)),
            Verdict::Send(Direction::Inbound)
        );
        assert_eq!(
            p.classify(&ev("203.0.113.9", "8.8.8.8", u)),
            Verdict::Withhold("unknown_direction")
        );
        // Without the opt-in, outbound to a destination on the pushed watchlist is still sent.
        let mut b = watchhouse_intel::MatcherBuilder::new();
        let (c2, _) = watchhouse_intel::parse_netset("203.0.113.66\n");
        b.add_list(watchhouse_intel::ListInfo::new("c2", "c2"), c2);
        let watched = p.clone().with_watchlist(Some(Arc::new(b.build())));
        assert_eq!(
            watched.classify(&ev("192.168.1.2", "203.0.113.66", u)),
            Verdict::Send(Direction::Outbound)
        );
        assert_eq!(
            watched.classify(&ev("192.168.1.2", "8.8.8.8", u)),
            Verdict::Withhold("outbound")
        );
        assert_eq!(
            watched.classify(&ev("192.168.1.2", "192.168.1.3", u)),
            Verdict::Withhold("internal")
        );
        let (opt_in, _) = EdgePolicy::new(&[], true);
        assert_eq!(
            opt_in.classify(&ev("192.168.1.2", "8.8.8.8", u)),
            Verdict::Send(Direction::Outbound)
        );
        assert_eq!(
            opt_in.classify(&ev("fd00::1", "fd00::2", u)),
            Verdict::Withhold("internal")
        );
    }
}
