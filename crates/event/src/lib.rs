//! The normalised firewall event: the one shape every parser produces, the collector filters and
//! ships, and the hub stores and detects on.
//!
//! This crate is pure data: no IO, no clock. It is also the only crate that knows OCSF; everything
//! else speaks [`Event`], and [`Event::to_ocsf`] renders it as an OCSF 1.3 Network Activity (class
//! 4001) object at the edges (the `watchhouse parse` command, exports).

pub mod names;
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What the firewall did with the packet or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let through.
    Allow,
    /// Blocked by policy (vendor did not say whether silently or not).
    Deny,
    /// Silently discarded.
    Drop,
    /// Refused with a reset or ICMP unreachable.
    Reject,
}

impl Action {
    /// Stable lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Drop => "drop",
            Action::Reject => "reject",
        }
    }

    /// True when the firewall let the traffic through.
    pub fn is_allowed(self) -> bool {
        matches!(self, Action::Allow)
    }

    /// Parses the stable name produced by [`Action::as_str`].
    pub fn from_name(s: &str) -> Option<Action> {
        Some(match s {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            "drop" => Action::Drop,
            "reject" => Action::Reject,
            _ => return None,
        })
    }
}

/// Which way the traffic crossed the member's boundary, as the collector classified it from the
/// member's own networks (see `watchhouse-collector`'s edge filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the internet towards the member.
    Inbound,
    /// From the member towards the internet.
    Outbound,
    /// Between two of the member's own addresses. Never leaves the member's network.
    Internal,
    /// Neither address could be placed.
    Unknown,
}

impl Direction {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
            Direction::Unknown => "unknown",
        }
    }

    /// Parses the stable name produced by [`Direction::as_str`].
    pub fn from_name(s: &str) -> Option<Direction> {
        Some(match s {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            "internal" => Direction::Internal,
            "unknown" => Direction::Unknown,
            _ => return None,
        })
    }
}

/// An IP protocol number (6 = TCP, 17 = UDP, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(transparent)]
pub struct IpProto(pub u8);

impl IpProto {
    /// ICMP for IPv4.
    pub const ICMP: IpProto = IpProto(1);
    /// TCP.
    pub const TCP: IpProto = IpProto(6);
    /// UDP.
    pub const UDP: IpProto = IpProto(17);
    /// GRE.
    pub const GRE: IpProto = IpProto(47);
    /// ESP (IPsec).
    pub const ESP: IpProto = IpProto(50);
    /// ICMP for IPv6.
    pub const ICMPV6: IpProto = IpProto(58);
    /// SCTP.
    pub const SCTP: IpProto = IpProto(132);

    /// Lower-case name for well-known protocols, else `None`.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "icmp",
            2 => "igmp",
            6 => "tcp",
            17 => "udp",
            47 => "gre",
            50 => "esp",
            51 => "ah",
            58 => "ipv6-icmp",
            132 => "sctp",
            _ => return None,
        })
    }

    /// Reads a protocol name or number as firewalls write it (`TCP`, `tcp`, `6`, `ICMPv6`).
    pub fn parse(s: &str) -> Option<IpProto> {
        let b = s.as_bytes();
        // A number (`u8`'s own reader, sign and all) or a name: the first byte tells which.
        if matches!(b.first(), Some(b'0'..=b'9' | b'+')) {
            return s.parse::<u8>().ok().map(IpProto);
        }
        if b.len() > 9 {
            return None;
        }
        // Lower-cased into a fixed buffer, then one comparison per name of that length.
        let mut low = [0u8; 9];
        for (l, c) in low.iter_mut().zip(b) {
            *l = c.to_ascii_lowercase();
        }
        let p = match &low[..b.len()] {
            b"tcp" => 6,
            b"udp" => 17,
            b"gre" => 47,
            b"esp" => 50,
            b"ah" => 51,
            b"icmp" => 1,
            b"igmp" => 2,
            b"sctp" => 132,
            b"icmpv6" | b"icmp6" | b"ipv6-icmp" => 58,
            _ => return None,
        };
        Some(IpProto(p))
    }

    /// True for protocols whose events carry ports.
    pub fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 132)
    }
}

impl fmt::Display for IpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "proto-{}", self.0),
        }
    }
}

/// The log format (and so the device vendor and product) a line was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Linux netfilter `LOG` target output: iptables, UFW, nftables, Proxmox VE, Ubiquiti
    /// UniFi / EdgeOS kernel lines, Smoothwall.
    Netfilter,
    /// pfSense / OPNsense `filterlog` CSV.
    Filterlog,
    /// ArcSight Common Event Format (generic; UniFi, Palo Alto and others send it).
    Cef,
    /// IBM QRadar Log Event Extended Format 1.0 / 2.0.
    Leef,
    /// Fortinet FortiGate key=value logs.
    FortiGate,
    /// Cisco ASA and Firepower Threat Defense (`%ASA-…`, `%FTD-…`).
    CiscoAsa,
    /// Cisco Meraki MX syslog (flows, firewall, ip_flow_start/end).
    Meraki,
    /// Palo Alto Networks PAN-OS CSV (TRAFFIC and THREAT).
    PanOs,
    /// SonicWall SonicOS key=value logs.
    SonicWall,
    /// Sophos Firewall (XG / XGS) and Sophos UTM packet filter.
    Sophos,
    /// WatchGuard Firebox traffic logs.
    WatchGuard,
    /// MikroTik RouterOS firewall logging.
    MikroTik,
    /// Juniper SRX `RT_FLOW` session logs (BSD and structured).
    JuniperSrx,
    /// Zeek `conn.log`, TSV or JSON.
    Zeek,
    /// Suricata EVE JSON (flow, alert, drop, netflow).
    Suricata,
    /// Check Point Log Exporter (syslog and splunk formats).
    CheckPoint,
    /// DrayTek Vigor firewall filter logs.
    DrayTek,
    /// Barracuda CloudGen Firewall activity log.
    Barracuda,
    /// Untangle NG Firewall / Arista Edge Threat Management JSON events.
    Untangle,
}

impl Format {
    /// Every format, in auto-detection order.
    pub const ALL: &'static [Format] = &[
        Format::Netfilter,
        Format::Filterlog,
        Format::Cef,
        Format::Leef,
        Format::FortiGate,
        Format::CiscoAsa,
        Format::Meraki,
        Format::PanOs,
        Format::SonicWall,
        Format::Sophos,
        Format::WatchGuard,
        Format::MikroTik,
        Format::JuniperSrx,
        Format::Zeek,
        Format::Suricata,
        Format::CheckPoint,
        Format::DrayTek,
        Format::Barracuda,
        Format::Untangle,
    ];

    /// Stable name used on the command line, in config and in counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Netfilter => "netfilter",
            Format::Filterlog => "filterlog",
            Format::Cef => "cef",
            Format::Leef => "leef",
            Format::FortiGate => "fortigate",
            Format::CiscoAsa => "cisco_asa",
            Format::Meraki => "meraki",
            Format::PanOs => "panos",
            Format::SonicWall => "sonicwall",
            Format::Sophos => "sophos",
            Format::WatchGuard => "watchguard",
            Format::MikroTik => "mikrotik",
            Format::JuniperSrx => "juniper_srx",
            Format::Zeek => "zeek",
            Format::Suricata => "suricata",
            Format::CheckPoint => "checkpoint",
            Format::DrayTek => "draytek",
            Format::Barracuda => "barracuda",
            Format::Untangle => "untangle",
        }
    }

    /// Parses a name produced by [`Format::as_str`] (plus a few familiar aliases).
    pub fn from_name(s: &str) -> Option<Format> {
        let s = s.to_ascii_lowercase();
        if let Some(f) = Format::ALL.iter().find(|f| f.as_str() == s) {
            return Some(*f);
        }
        Some(match s.as_str() {
            "iptables" | "ufw" | "nftables" | "proxmox" | "unifi" | "edgeos" | "smoothwall" => {
                Format::Netfilter
            }
            "pfsense" | "opnsense" => Format::Filterlog,
            "asa" | "ftd" | "firepower" => Format::CiscoAsa,
            "paloalto" | "pan-os" | "palo_alto" => Format::PanOs,
            "fortinet" | "fortios" => Format::FortiGate,
            "juniper" | "srx" => Format::JuniperSrx,
            "sophos_xg" | "sophos_utm" | "xg" | "utm" => Format::Sophos,
            "firebox" => Format::WatchGuard,
            "routeros" => Format::MikroTik,
            "eve" => Format::Suricata,
            "check_point" | "checkpoint_log_exporter" => Format::CheckPoint,
            "vigor" => Format::DrayTek,
            "cloudgen" | "barracuda_cloudgen" => Format::Barracuda,
            "arista_etm" | "ngfw" => Format::Untangle,
            _ => return None,
        })
    }

    /// Vendor name as OCSF `metadata.product.vendor_name` wants it.
    pub fn vendor_name(self) -> &'static str {
        match self {
            Format::Netfilter => "Linux",
            Format::Filterlog => "Netgate / Deciso",
            Format::Cef | Format::Leef => "Unknown",
            Format::FortiGate => "Fortinet",
            Format::CiscoAsa | Format::Meraki => "Cisco",
            Format::PanOs => "Palo Alto Networks",
            Format::SonicWall => "SonicWall",
            Format::Sophos => "Sophos",
            Format::WatchGuard => "WatchGuard",
            Format::MikroTik => "MikroTik",
            Format::JuniperSrx => "Juniper Networks",
            Format::Zeek => "Zeek",
            Format::Suricata => "OISF",
            Format::CheckPoint => "Check Point",
            Format::DrayTek => "DrayTek",
            Format::Barracuda => "Barracuda Networks",
            Format::Untangle => "Arista (Untangle)",
        }
    }

    /// Product name as OCSF `metadata.product.name` wants it.
    pub fn product_name(self) -> &'static str {
        match self {
            Format::Netfilter => "netfilter",
            Format::Filterlog => "pfSense / OPNsense filterlog",
            Format::Cef => "CEF source",
            Format::Leef => "LEEF source",
            Format::FortiGate => "FortiGate",
            Format::CiscoAsa => "ASA / Firepower Threat Defense",
            Format::Meraki => "Meraki MX",
            Format::PanOs => "PAN-OS",
            Format::SonicWall => "SonicOS",
            Format::Sophos => "Sophos Firewall / UTM",
            Format::WatchGuard => "Firebox",
            Format::MikroTik => "RouterOS",
            Format::JuniperSrx => "SRX",
            Format::Zeek => "Zeek",
            Format::Suricata => "Suricata",
            Format::CheckPoint => "Quantum Security Gateway",
            Format::DrayTek => "Vigor",
            Format::Barracuda => "CloudGen Firewall",
            Format::Untangle => "NG Firewall",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Addresses after network address translation, as the firewall reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Nat {
    /// Translated source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    /// Translated source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Translated destination address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<IpAddr>,
    /// Translated destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
}

impl Nat {
    /// `None` when nothing was translated.
    pub fn non_empty(self) -> Option<Nat> {
        (self != Nat::default()).then_some(self)
    }
}

/// One normalised firewall event.
///
/// `count` is greater than one when the collector folded identical repeats into one record; the
/// timestamps then span `time_ms ..= last_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When the firewall logged it, milliseconds since the Unix epoch, UTC.
    pub time_ms: i64,
    /// Last occurrence when `count > 1`; equal to `time_ms` otherwise.
    #[serde(default)]
    pub last_ms: i64,
    /// What the firewall did.
    pub action: Action,
    /// IP protocol.
    pub protocol: IpProto,
    /// Source address.
    pub src_ip: IpAddr,
    /// Source port, for protocols that have ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Destination port, for protocols that have ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// Direction relative to the member; set by the collector's edge filter.
    pub direction: Direction,
    /// Interface the packet arrived on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<String>,
    /// Interface the packet would leave by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_iface: Option<String>,
    /// Rule id, number or name that matched, as the vendor wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Host name of the reporting device, from the syslog header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Format the line was read as.
    pub format: Format,
    /// Bytes, where the vendor reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Packets, where the vendor reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// How many identical occurrences this record stands for (at least 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Addresses after NAT, where the firewall reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<Nat>,
    /// `Vendor|Product` as the line names them (CEF, LEEF), when more specific than the format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The destination's host name, where the log carries it (HTTP Host, TLS SNI, DNS query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The requested URL, where the log carries it (HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The original line, as received (lossily decoded if it was not UTF-8).
    pub raw: String,
}

fn one() -> u32 {
    1
}

/// OCSF schema version this crate renders.
pub const OCSF_VERSION: &str = "1.3.0";

impl Event {
    /// Renders the event as an OCSF Network Activity (class 4001) object.
    pub fn to_ocsf(&self) -> serde_json::Value {
        serde_json::to_value(self.ocsf()).unwrap_or(serde_json::Value::Null)
    }

    /// Writes the event as one line of OCSF JSON, without building an intermediate tree.
    pub fn write_ocsf<W: std::io::Write>(&self, w: W) -> serde_json::Result<()> {
        serde_json::to_writer(w, &self.ocsf())
    }

    /// The OCSF view of the event, borrowing from it.
    pub fn ocsf(&self) -> ocsf::NetworkActivity<'_> {
        ocsf_of(Parts {
            time_ms: self.time_ms,
            last_ms: self.last_ms,
            action: self.action,
            protocol: self.protocol,
            src_ip: self.src_ip,
            src_port: self.src_port,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            direction: self.direction,
            in_iface: self.in_iface.as_deref(),
            out_iface: self.out_iface.as_deref(),
            rule: self.rule.as_deref(),
            device: self.device.as_deref(),
            format: self.format,
            bytes: self.bytes,
            packets: self.packets,
            count: self.count,
            nat: self.nat.as_ref(),
            product: self.product.as_deref(),
            raw: &self.raw,
        })
    }

    /// The event borrowed as an [`EventRef`] (no copy of its text).
    pub fn borrowed(&self) -> EventRef<'_> {
        fn b(s: &Option<String>) -> Option<Cow<'_, str>> {
            s.as_deref().map(Cow::Borrowed)
        }
        EventRef {
            time_ms: self.time_ms,
            last_ms: self.last_ms,
            action: self.action,
            protocol: self.protocol,
            src_ip: self.src_ip,
            src_port: self.src_port,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            direction: self.direction,
            in_iface: b(&self.in_iface),
            out_iface: b(&self.out_iface),
            rule: b(&self.rule),
            device: b(&self.device),
            format: self.format,
            bytes: self.bytes,
            packets: self.packets,
            count: self.count,
            nat: self.nat.clone(),
            product: b(&self.product),
            host: b(&self.host),
            url: b(&self.url),
            raw: &self.raw,
        }
    }
}

/// An [`Event`] whose text borrows from the line it was read from, where it can: what the
/// parsers produce, so that a line that is only counted, filtered out or folded into a repeat
/// costs no allocation. [`EventRef::to_event`] (or [`EventRef::into_event`]) makes the owned
/// event; the fields mean what [`Event`]'s do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct EventRef<'a> {
    pub time_ms: i64,
    pub last_ms: i64,
    pub action: Action,
    pub protocol: IpProto,
    pub src_ip: IpAddr,
    pub src_port: Option<u16>,
    pub dst_ip: IpAddr,
    pub dst_port: Option<u16>,
    pub direction: Direction,
    pub in_iface: Option<Cow<'a, str>>,
    pub out_iface: Option<Cow<'a, str>>,
    pub rule: Option<Cow<'a, str>>,
    pub device: Option<Cow<'a, str>>,
    pub format: Format,
    pub bytes: Option<u64>,
    pub packets: Option<u64>,
    pub count: u32,
    pub nat: Option<Nat>,
    pub product: Option<Cow<'a, str>>,
    pub host: Option<Cow<'a, str>>,
    pub url: Option<Cow<'a, str>>,
    pub raw: &'a str,
}

impl EventRef<'_> {
    /// The owned event, copying the borrowed text.
    pub fn to_event(&self) -> Event {
        let o = |s: &Option<Cow<'_, str>>| s.as_deref().map(str::to_owned);
        Event {
            time_ms: self.time_ms,
            last_ms: self.last_ms,
            action: self.action,
            protocol: self.protocol,
            src_ip: self.src_ip,
            src_port: self.src_port,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            direction: self.direction,
            in_iface: o(&self.in_iface),
            out_iface: o(&self.out_iface),
            rule: o(&self.rule),
            device: o(&self.device),
            format: self.format,
            bytes: self.bytes,
            packets: self.packets,
            count: self.count,
            nat: self.nat.clone(),
            product: o(&self.product),
            host: o(&self.host),
            url: o(&self.url),
            raw: self.raw.to_owned(),
        }
    }

    /// The owned event, moving text that is owned already instead of copying it.
    pub fn into_event(self) -> Event {
        let o = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned);
        Event {
            time_ms: self.time_ms,
            last_ms: self.last_ms,
            action: self.action,
            protocol: self.protocol,
            src_ip: self.src_ip,
            src_port: self.src_port,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            direction: self.direction,
            in_iface: o(self.in_iface),
            out_iface: o(self.out_iface),
            rule: o(self.rule),
            device: o(self.device),
            format: self.format,
            bytes: self.bytes,
            packets: self.packets,
            count: self.count,
            nat: self.nat,
            product: o(self.product),
            host: o(self.host),
            url: o(self.url),
            raw: self.raw.to_owned(),
        }
    }

    /// Writes the event as one line of OCSF JSON, as [`Event::write_ocsf`] does.
    pub fn write_ocsf<W: std::io::Write>(&self, w: W) -> serde_json::Result<()> {
        serde_json::to_writer(w, &self.ocsf())
    }

    /// The OCSF view of the event, as [`Event::ocsf`] gives it.
    pub fn ocsf(&self) -> ocsf::NetworkActivity<'_> {
        ocsf_of(Parts {
            time_ms: self.time_ms,
            last_ms: self.last_ms,
            action: self.action,
            protocol: self.protocol,
            src_ip: self.src_ip,
            src_port: self.src_port,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            direction: self.direction,
            in_iface: self.in_iface.as_deref(),
            out_iface: self.out_iface.as_deref(),
            rule: self.rule.as_deref(),
            device: self.device.as_deref(),
            format: self.format,
            bytes: self.bytes,
            packets: self.packets,
            count: self.count,
            nat: self.nat.as_ref(),
            product: self.product.as_deref(),
            raw: self.raw,
        })
    }
}

/// What the OCSF view reads of an event, borrowed from an [`Event`] or an [`EventRef`].
struct Parts<'s> {
    time_ms: i64,
    last_ms: i64,
    action: Action,
    protocol: IpProto,
    src_ip: IpAddr,
    src_port: Option<u16>,
    dst_ip: IpAddr,
    dst_port: Option<u16>,
    direction: Direction,
    in_iface: Option<&'s str>,
    out_iface: Option<&'s str>,
    rule: Option<&'s str>,
    device: Option<&'s str>,
    format: Format,
    bytes: Option<u64>,
    packets: Option<u64>,
    count: u32,
    nat: Option<&'s Nat>,
    product: Option<&'s str>,
    raw: &'s str,
}

fn ocsf_of(p: Parts<'_>) -> ocsf::NetworkActivity<'_> {
    use ocsf::*;
    let allowed = p.action.is_allowed();
    let (activity_id, activity_name) = if allowed {
        (6, "Traffic")
    } else {
        (5, "Refuse")
    };
    let (disposition_id, disposition) = match p.action {
        Action::Allow => (1, "Allowed"),
        Action::Deny => (2, "Blocked"),
        Action::Drop => (6, "Dropped"),
        Action::Reject => (25, "Rejected"),
    };
    let (direction_id, direction) = match p.direction {
        Direction::Inbound => (1, "Inbound"),
        Direction::Outbound => (2, "Outbound"),
        Direction::Internal => (3, "Lateral"),
        Direction::Unknown => (0, "Unknown"),
    };
    let (vendor_name, product_name) = match p.product.and_then(|p| p.split_once('|')) {
        Some((v, p)) => (v, p),
        None => (p.format.vendor_name(), p.format.product_name()),
    };
    NetworkActivity {
        class_uid: 4001,
        class_name: "Network Activity",
        category_uid: 4,
        category_name: "Network Activity",
        activity_id,
        activity_name,
        type_uid: 400100 + activity_id as u32,
        severity_id: 1,
        severity: "Informational",
        time: p.time_ms,
        start_time: (p.count > 1).then_some(p.time_ms),
        end_time: (p.count > 1).then_some(p.last_ms),
        count: p.count,
        action_id: if allowed { 1 } else { 2 },
        action: if allowed { "Allowed" } else { "Denied" },
        disposition_id,
        disposition,
        src_endpoint: Endpoint {
            ip: p.src_ip,
            port: p.src_port,
            interface_name: p.in_iface,
        },
        dst_endpoint: Endpoint {
            ip: p.dst_ip,
            port: p.dst_port,
            interface_name: p.out_iface,
        },
        connection_info: ConnectionInfo {
            protocol_name: ProtoName(p.protocol),
            protocol_num: p.protocol.0,
            direction,
            direction_id,
            protocol_ver_id: if p.src_ip.is_ipv4() { 4 } else { 6 },
        },
        traffic: (p.bytes.is_some() || p.packets.is_some()).then_some(Traffic {
            bytes: p.bytes,
            packets: p.packets,
        }),
        firewall_rule: p.rule.map(|uid| FirewallRule { uid }),
        device: p.device.map(|hostname| Device {
            hostname,
            type_id: 9,
            r#type: "Firewall",
        }),
        unmapped: p.nat.map(|nat| Unmapped { nat }),
        metadata: Metadata {
            version: OCSF_VERSION,
            log_name: p.format.as_str(),
            product: Product {
                vendor_name,
                name: product_name,
            },
        },
        raw_data: p.raw,
    }
}

/// Typed OCSF 1.3 Network Activity output (only the attributes Watchhouse fills).
pub mod ocsf {
    use super::*;

    /// OCSF class 4001.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct NetworkActivity<'a> {
        pub class_uid: u32,
        pub class_name: &'static str,
        pub category_uid: u32,
        pub category_name: &'static str,
        pub activity_id: u8,
        pub activity_name: &'static str,
        pub type_uid: u32,
        pub severity_id: u8,
        pub severity: &'static str,
        pub time: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub start_time: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub end_time: Option<i64>,
        pub count: u32,
        pub action_id: u8,
        pub action: &'static str,
        pub disposition_id: u8,
        pub disposition: &'static str,
        pub src_endpoint: Endpoint<'a>,
        pub dst_endpoint: Endpoint<'a>,
        pub connection_info: ConnectionInfo,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub traffic: Option<Traffic>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub firewall_rule: Option<FirewallRule<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub device: Option<Device<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub unmapped: Option<Unmapped<'a>>,
        pub metadata: Metadata<'a>,
        pub raw_data: &'a str,
    }

    /// `src_endpoint` / `dst_endpoint`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct Endpoint<'a> {
        pub ip: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub port: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub interface_name: Option<&'a str>,
    }

    /// A protocol rendered by name.
    #[derive(Debug)]
    pub struct ProtoName(pub IpProto);

    impl Serialize for ProtoName {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0.name() {
                Some(n) => s.serialize_str(n),
                None => s.collect_str(&self.0),
            }
        }
    }

    /// `connection_info`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct ConnectionInfo {
        pub protocol_name: ProtoName,
        pub protocol_num: u8,
        pub direction: &'static str,
        pub direction_id: u8,
        pub protocol_ver_id: u8,
    }

    /// `traffic`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct Traffic {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub bytes: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub packets: Option<u64>,
    }

    /// `firewall_rule`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct FirewallRule<'a> {
        pub uid: &'a str,
    }

    /// `device`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct Device<'a> {
        pub hostname: &'a str,
        pub type_id: u8,
        pub r#type: &'static str,
    }

    /// `unmapped`: NAT, which OCSF 1.3 Network Activity has no attribute for.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct Unmapped<'a> {
        pub nat: &'a Nat,
    }

    /// `metadata`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct Metadata<'a> {
        pub version: &'static str,
        pub log_name: &'static str,
        pub product: Product<'a>,
    }

    /// `metadata.product`.
    #[derive(Debug, Serialize)]
    #[allow(missing_docs)]
    pub struct Product<'a> {
        pub vendor_name: &'a str,
        pub name: &'a str,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol reader as first written (number first, then names compared one by one):
    /// the reference the table-driven reader is held to.
    fn proto_reference(s: &str) -> Option<IpProto> {
        if let Ok(n) = s.parse::<u8>() {
            return Some(IpProto(n));
        }
        let names: [(&str, u8); 11] = [
            ("tcp", 6),
            ("udp", 17),
            ("gre", 47),
            ("esp", 50),
            ("ah", 51),
            ("icmp", 1),
            ("igmp", 2),
            ("sctp", 132),
            ("icmpv6", 58),
            ("icmp6", 58),
            ("ipv6-icmp", 58),
        ];
        names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|&(_, p)| IpProto(p))
    }

    #[test]
    fn the_protocol_reader_agrees_with_its_reference() {
        let mut inputs: Vec<String> = (0..300).map(|n| n.to_string()).collect();
        for name in [
            "tcp",
            "udp",
            "gre",
            "esp",
            "ah",
            "icmp",
            "igmp",
            "sctp",
            "icmpv6",
            "icmp6",
            "ipv6-icmp",
        ] {
            // Every upper/lower-case spelling of the name.
            for mask in 0u32..(1 << name.len()) {
                let spelled: String = name
                    .chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if mask >> i & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                inputs.push(spelled.clone());
                inputs.push(format!("{spelled} "));
                inputs.push(format!("x{spelled}"));
                inputs.push(spelled[..spelled.len() - 1].to_string());
            }
        }
        for odd in [
            "",
            "+6",
            "-6",
            "+",
            "06",
            "0x6",
            "256",
            " tcp",
            "tcp\0",
            "tcp\u{e9}",
            "\u{212a}cp",
            "ipv6-icmpx",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            inputs.push(odd.to_string());
        }
        for s in &inputs {
            assert_eq!(IpProto::parse(s), proto_reference(s), "{s:?}");
        }
        assert_eq!(IpProto::parse("TCP"), Some(IpProto::TCP));
        assert_eq!(IpProto::parse("ICMPv6"), Some(IpProto(58)));
        assert_eq!(IpProto::parse("tcpx"), None);
    }

    fn sample() -> Event {
        Event {
            time_ms: 1_700_000_000_000,
            last_ms: 1_700_000_000_000,
            action: Action::Drop,
            protocol: IpProto::TCP,
            src_ip: "195.54.160.107".parse().unwrap(),
            src_port: Some(8080),
            dst_ip: "51.15.166.67".parse().unwrap(),
            dst_port: Some(8123),
            direction: Direction::Inbound,
            in_iface: Some("enp1s0".into()),
            out_iface: None,
            rule: None,
            device: Some("fw1".into()),
            format: Format::Netfilter,
            bytes: None,
            packets: None,
            count: 1,
            raw: "raw line".into(),
            nat: None,
            product: None,
            host: None,
            url: None,
        }
    }

    /// Every field set, so that a field forgotten in a conversion shows.
    fn full() -> Event {
        Event {
            last_ms: 1_700_000_000_500,
            out_iface: Some("eth1".into()),
            rule: Some("r7".into()),
            bytes: Some(40),
            packets: Some(2),
            count: 3,
            nat: Some(Nat {
                src_ip: Some("192.0.2.1".parse().unwrap()),
                src_port: Some(9),
                dst_ip: None,
                dst_port: Some(80),
            }),
            product: Some("Vendor|Product".into()),
            host: Some("example.org".into()),
            url: Some("https://example.org/x".into()),
            ..sample()
        }
    }

    #[test]
    fn a_borrowed_event_made_owned_again_is_the_same_event() {
        for e in [sample(), full()] {
            let r = e.borrowed();
            assert_eq!(r.to_event(), e);
            assert_eq!(r.clone().into_event(), e);
            // Borrowing copies no text.
            assert!(r.in_iface.iter().all(|c| matches!(c, Cow::Borrowed(_))));
            assert!(std::ptr::eq(r.raw, e.raw.as_str()));
        }
    }

    #[test]
    fn an_event_and_its_borrowed_view_render_the_same_ocsf() {
        for e in [sample(), full()] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            e.write_ocsf(&mut a).unwrap();
            e.borrowed().write_ocsf(&mut b).unwrap();
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
        let v = full().to_ocsf();
        assert_eq!(v["metadata"]["product"]["vendor_name"], "Vendor");
        assert_eq!(v["firewall_rule"]["uid"], "r7");
        assert_eq!(v["dst_endpoint"]["interface_name"], "eth1");
    }

    #[test]
    fn ocsf_has_required_fields() {
        let v = sample().to_ocsf();
        assert_eq!(v["class_uid"], 4001);
        assert_eq!(v["type_uid"], 400105);
        assert_eq!(v["src_endpoint"]["ip"], "195.54.160.107");
        assert_eq!(v["src_endpoint"]["port"], 8080);
        assert_eq!(v["dst_endpoint"]["port"], 8123);
        assert_eq!(v["connection_info"]["protocol_name"], "tcp");
        assert_eq!(v["connection_info"]["direction"], "Inbound");
        assert_eq!(v["disposition"], "Dropped");
        assert_eq!(v["metadata"]["product"]["vendor_name"], "Linux");
        assert_eq!(v["raw_data"], "raw line");
    }

    #[test]
    fn protocol_names_round_trip() {
        for n in ["tcp", "TCP", "udp", "icmp", "ICMPv6", "17"] {
            assert!(IpProto::parse(n).is_some(), "{n}");
        }
        assert_eq!(IpProto::parse("ICMPv6"), Some(IpProto::ICMPV6));
        assert_eq!(IpProto::parse("bogus"), None);
        assert_eq!(IpProto(253).to_string(), "proto-253");
    }

    #[test]
    fn names_round_trip() {
        for a in [Action::Allow, Action::Deny, Action::Drop, Action::Reject] {
            assert_eq!(Action::from_name(a.as_str()), Some(a));
        }
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.as_str()), Some(*f));
        }
        let e = sample();
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
