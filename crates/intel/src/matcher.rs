//! The matcher: every indicator of every feed in one immutable structure, built off the hot path
//! and swapped in whole.
//!
//! Layout, chosen for lookups that never allocate and touch few cache lines:
//!
//! - IPv4 hosts in one open-addressing table of `(address, label set)` pairs, at most half full,
//!   so a lookup is one multiply and usually one cache line.
//! - IPv4 blocks flattened at build time into sorted, disjoint intervals (nested and overlapping
//!   blocks of different feeds are split where they differ), indexed by the top 16 bits, so a
//!   lookup is one index load and a short binary search.
//! - A host inside a block gets, at build time, the union of both label sets, so a host hit needs
//!   no second lookup.
//! - IPv6 hosts and blocks, domains and URLs in hash maps (they are few).
//!
//! A lookup returns a [`Match`]: a slice of [`Label`]s, one per (feed, category) that lists the
//! value, each with its confidence and TLP. Label sets are interned, so the millions of entries of
//! a large feed share a handful of sets.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use crate::indicator::{normalise_domain, normalise_url, Indicator, IndicatorValue, Tlp};
use crate::{v6_mask, Cidr};

/// A feed as the matcher knows it: the defaults for its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfo {
    /// Short name shown in alerts, e.g. `firehol_level1`.
    pub name: String,
    /// Default category of its entries.
    pub category: String,
    /// Default confidence, 0–100.
    pub confidence: u8,
    /// Default TLP.
    pub tlp: Tlp,
}

impl FeedInfo {
    /// A feed with confidence 50 and `TLP:CLEAR`.
    pub fn new(name: impl Into<String>, category: impl Into<String>) -> FeedInfo {
        FeedInfo {
            name: name.into(),
            category: category.into(),
            confidence: 50,
            tlp: Tlp::Clear,
        }
    }
}

/// Old name kept for callers that only name a list and its category.
pub type ListInfo = FeedInfo;

/// Identifies a feed inside one matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedId(u16);

/// Most feeds a matcher holds.
pub const MAX_LISTS: usize = u16::MAX as usize;

/// Why a value is listed: one feed and category, with the feed's confidence and TLP for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The feed.
    pub feed: FeedId,
    category: u16,
    /// 0–100; the highest the feed gave for this value in this category.
    pub confidence: u8,
    /// The most restrictive TLP the feed gave for this value in this category.
    pub tlp: Tlp,
}

/// The labels of a value that matched, with names resolved through the matcher.
#[derive(Debug, Clone, Copy)]
pub struct Match<'a> {
    labels: &'a [Label],
    m: &'a Matcher,
}

impl<'a> Match<'a> {
    /// Every label, ordered by feed.
    pub fn labels(&self) -> &'a [Label] {
        self.labels
    }

    /// Feed names, without repeats, in feed order.
    pub fn feed_names(&self) -> Vec<&'a str> {
        let mut v: Vec<&str> = self
            .labels
            .iter()
            .map(|l| self.m.feed(l.feed).name.as_str())
            .collect();
        v.dedup();
        v
    }

    /// Category names, sorted, without repeats.
    pub fn categories(&self) -> Vec<&'a str> {
        let mut v: Vec<&str> = self.labels.iter().map(|l| self.m.category(*l)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Highest confidence among the labels.
    pub fn max_confidence(&self) -> u8 {
        self.labels.iter().map(|l| l.confidence).max().unwrap_or(0)
    }

    /// Labels whose TLP is at most `allowed`.
    pub fn shareable(&self, allowed: Tlp) -> impl Iterator<Item = &'a Label> + 'a {
        self.labels.iter().filter(move |l| l.tlp <= allowed)
    }
}

/// Collects feeds and their indicators, then builds an immutable [`Matcher`].
#[derive(Debug, Default)]
pub struct MatcherBuilder {
    feeds: Vec<FeedInfo>,
    categories: Vec<String>,
    category_ids: HashMap<String, u16>,
    v4_hosts: Vec<(u32, Label)>,
    v4_nets: Vec<(u32, u8, Label)>,
    v6: Vec<(u128, u8, Label)>,
    domains: Vec<(String, Label)>,
    urls: Vec<(String, Label)>,
}

impl MatcherBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn category_id(&mut self, name: &str) -> u16 {
        if let Some(id) = self.category_ids.get(name) {
            return *id;
        }
        // More distinct categories than fit are folded into the last one rather than failing.
        let id = self.categories.len().min(u16::MAX as usize) as u16;
        if (id as usize) == self.categories.len() {
            self.categories.push(name.to_owned());
            self.category_ids.insert(name.to_owned(), id);
        }
        id
    }

    /// Adds a feed; its entries are added with [`MatcherBuilder::add`]. Returns `None` when the
    /// matcher already holds [`MAX_LISTS`] feeds.
    pub fn add_feed(&mut self, info: FeedInfo) -> Option<FeedId> {
        if self.feeds.len() >= MAX_LISTS {
            return None;
        }
        let id = FeedId(self.feeds.len() as u16);
        self.feeds.push(info);
        Some(id)
    }

    /// Adds one indicator of `feed`; its own category, confidence and TLP override the feed's.
    pub fn add(&mut self, feed: FeedId, ind: &Indicator) {
        let f = &self.feeds[feed.0 as usize];
        let confidence = ind.confidence.unwrap_or(f.confidence).min(100);
        let tlp = ind.tlp.unwrap_or(f.tlp);
        let cat_name = ind.category.clone().unwrap_or_else(|| f.category.clone());
        let category = self.category_id(&cat_name);
        let label = Label {
            feed,
            category,
            confidence,
            tlp,
        };
        self.add_value(&ind.value, label);
    }

    fn add_value(&mut self, v: &IndicatorValue, label: Label) {
        match v {
            IndicatorValue::Ip(c) => match c.addr() {
                IpAddr::V4(a) if c.prefix_len() == 32 => self.v4_hosts.push((u32::from(a), label)),
                IpAddr::V4(a) => self.v4_nets.push((u32::from(a), c.prefix_len(), label)),
                // IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address: stored as such, so
                // it matches however the address is written.
                IpAddr::V6(a) if c.prefix_len() >= 96 && a.to_ipv4_mapped().is_some() => {
                    let v4 = u32::from(a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED));
                    match c.prefix_len() - 96 {
                        32 => self.v4_hosts.push((v4, label)),
                        len => self.v4_nets.push((v4, len, label)),
                    }
                }
                IpAddr::V6(a) => self.v6.push((u128::from(a), c.prefix_len(), label)),
            },
            IndicatorValue::Domain(d) => self.domains.push((d.clone(), label)),
            IndicatorValue::Url(u) => self.urls.push((u.clone(), label)),
        }
    }

    /// Adds a feed with default metadata and its address blocks (the plain-list case).
    pub fn add_list(&mut self, info: FeedInfo, entries: impl IntoIterator<Item = Cidr>) {
        let Some(feed) = self.add_feed(info) else {
            return;
        };
        let f = &self.feeds[feed.0 as usize];
        let (confidence, tlp, cat) = (f.confidence, f.tlp, f.category.clone());
        let category = self.category_id(&cat);
        let label = Label {
            feed,
            category,
            confidence,
            tlp,
        };
        for c in entries {
            self.add_value(&IndicatorValue::Ip(c), label);
        }
    }

    /// Builds the matcher. Linear in the number of entries plus a sort.
    pub fn build(self) -> Matcher {
        let mut sets = SetInterner::default();
        // IPv4 blocks → disjoint intervals with merged label sets.
        let intervals = flatten_v4(self.v4_nets, &mut sets);
        let ranges = RangeTable::new(intervals);
        // IPv4 hosts: group by address, merge with any covering block.
        let mut hosts = self.v4_hosts;
        hosts.sort_unstable_by_key(|(a, _)| *a);
        let mut table = HostTable::with_capacity(hosts.len());
        let mut i = 0;
        let mut labels: Vec<Label> = Vec::new();
        while i < hosts.len() {
            let a = hosts[i].0;
            labels.clear();
            while i < hosts.len() && hosts[i].0 == a {
                labels.push(hosts[i].1);
                i += 1;
            }
            if let Some(s) = ranges.get(a) {
                labels.extend_from_slice(sets.get(s));
            }
            let id = sets.intern(&mut labels);
            table.insert(a, id);
        }
        // IPv6: per prefix length, longest first, like the hosts merged with covering blocks at
        // lookup time (there are few).
        let mut v6: BTreeMap<u8, HashMap<u128, Vec<Label>>> = BTreeMap::new();
        for (a, len, l) in self.v6 {
            v6.entry(len)
                .or_default()
                .entry(a & v6_mask(len))
                .or_default()
                .push(l);
        }
        let v6: Vec<(u8, HashMap<u128, u32>)> = v6
            .into_iter()
            .rev()
            .map(|(len, m)| {
                let m = m
                    .into_iter()
                    .map(|(a, mut ls)| (a, sets.intern(&mut ls)))
                    .collect();
                (len, m)
            })
            .collect();
        let domains = intern_map(self.domains, &mut sets);
        let urls = intern_map(self.urls, &mut sets);
        Matcher {
            feeds: self.feeds,
            categories: self.categories,
            sets: sets.sets,
            hosts: table,
            ranges,
            v6,
            domains,
            urls,
        }
    }
}

fn intern_map(v: Vec<(String, Label)>, sets: &mut SetInterner) -> HashMap<Box<str>, u32> {
    let mut grouped: HashMap<String, Vec<Label>> = HashMap::new();
    for (k, l) in v {
        grouped.entry(k).or_default().push(l);
    }
    grouped
        .into_iter()
        .map(|(k, mut ls)| (k.into_boxed_str(), sets.intern(&mut ls)))
        .collect()
}

/// Interns label sets; id 0 is "nothing".
#[derive(Default)]
struct SetInterner {
    sets: Vec<Box<[Label]>>,
    ids: HashMap<Box<[Label]>, u32>,
}

impl SetInterner {
    /// Normalises `labels` (one label per feed and category, highest confidence, most
    /// restrictive TLP) and returns its id.
    fn intern(&mut self, labels: &mut [Label]) -> u32 {
        if self.sets.is_empty() {
            self.sets.push(Box::new([]));
        }
        labels.sort_unstable_by_key(|l| (l.feed, l.category));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            match out.last_mut() {
                Some(p) if p.feed == l.feed && p.category == l.category => {
                    p.confidence = p.confidence.max(l.confidence);
                    p.tlp = p.tlp.max(l.tlp);
                }
                _ => out.push(*l),
            }
        }
        let key: Box<[Label]> = out.into_boxed_slice();
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = self.sets.len() as u32;
        self.sets.push(key.clone());
        self.ids.insert(key, id);
        id
    }

    fn get(&self, id: u32) -> &[Label] {
        &self.sets[id as usize]
    }
}

/// Splits possibly nested or overlapping blocks into disjoint intervals, each with the union of
/// the labels of every block covering it. Adjacent intervals with the same set are merged.
fn flatten_v4(nets: Vec<(u32, u8, Label)>, sets: &mut SetInterner) -> Vec<(u32, u32, u32)> {
    // Events at u64 positions so that `end + 1` of the last address does not overflow.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(nets.len() * 2);
    for (i, (a, len, _)) in nets.iter().enumerate() {
        let mask = crate::v4_mask(*len);
        let start = (a & mask) as u64;
        let end = start + (!mask as u64);
        events.push((start, true, i));
        events.push((end + 1, false, i));
    }
    events.sort_unstable_by_key(|(p, open, _)| (*p, *open));
    let mut active: BTreeMap<usize, ()> = BTreeMap::new();
    let mut out: Vec<(u32, u32, u32)> = Vec::new();
    let mut labels = Vec::new();
    let mut k = 0;
    while k < events.len() {
        let pos = events[k].0;
        while k < events.len() && events[k].0 == pos {
            let (_, open, i) = events[k];
            if open {
                active.insert(i, ());
            } else {
                active.remove(&i);
            }
            k += 1;
        }
        if active.is_empty() || pos > u32::MAX as u64 {
            continue;
        }
        let next = events.get(k).map(|e| e.0).unwrap_or(1 << 32);
        labels.clear();
        labels.extend(active.keys().map(|i| nets[*i].2));
        let id = sets.intern(&mut labels);
        let (start, end) = (pos as u32, (next - 1) as u32);
        match out.last_mut() {
            Some(last) if last.2 == id && last.1 as u64 + 1 == pos => last.1 = end,
            _ => out.push((start, end, id)),
        }
    }
    out
}

/// Open-addressing table of IPv4 hosts; value 0 marks an empty slot.
#[derive(Debug, Default)]
struct HostTable {
    slots: Vec<(u32, u32)>,
    shift: u32,
    len: usize,
    /// One bit per /24 that holds at least one listed host (2 MiB, stays in cache far better
    /// than the table): most misses never touch the table.
    per24: Vec<u64>,
}

impl HostTable {
    fn with_capacity(n: usize) -> HostTable {
        // At most half full: short probe sequences for misses as well as hits.
        let cap = (n * 2).next_power_of_two().max(16);
        HostTable {
            slots: vec![(0, 0); cap],
            shift: 64 - cap.trailing_zeros(),
            len: 0,
            per24: if n == 0 { Vec::new() } else { vec![0; 1 << 18] },
        }
    }

    #[inline]
    fn slot(&self, a: u32) -> usize {
        ((a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn insert(&mut self, a: u32, v: u32) {
        self.per24[(a >> 14) as usize] |= 1 << ((a >> 8) & 63);
        let mask = self.slots.len() - 1;
        let mut i = self.slot(a);
        loop {
            let s = &mut self.slots[i];
            if s.1 == 0 || s.0 == a {
                if s.1 == 0 {
                    self.len += 1;
                }
                *s = (a, v);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn get(&self, a: u32) -> Option<u32> {
        match self.per24.get((a >> 14) as usize) {
            Some(w) if w & (1 << ((a >> 8) & 63)) != 0 => {}
            _ => return None,
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(a);
        loop {
            let (k, v) = self.slots[i];
            if v == 0 {
                return None;
            }
            if k == a {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }
}

/// Disjoint IPv4 intervals, sorted, with a first-index per /16.
#[derive(Debug, Default)]
struct RangeTable {
    starts: Vec<u32>,
    ends: Vec<u32>,
    sets: Vec<u32>,
    /// `index[b]` is the first interval starting at or after `b << 16`; 65,537 entries.
    index: Vec<u32>,
}

impl RangeTable {
    fn new(iv: Vec<(u32, u32, u32)>) -> RangeTable {
        let starts: Vec<u32> = iv.iter().map(|x| x.0).collect();
        let ends = iv.iter().map(|x| x.1).collect();
        let sets = iv.iter().map(|x| x.2).collect();
        let mut index = Vec::with_capacity(65_537);
        let mut j = 0usize;
        for b in 0..=65_536u64 {
            while j < starts.len() && (starts[j] as u64) < (b << 16) {
                j += 1;
            }
            index.push(j as u32);
        }
        RangeTable {
            starts,
            ends,
            sets,
            index,
        }
    }

    #[inline]
    fn get(&self, a: u32) -> Option<u32> {
        if self.starts.is_empty() {
            return None;
        }
        let b = (a >> 16) as usize;
        // The interval covering `a` starts in this /16 or is the last one before it.
        let lo = (self.index[b] as usize).saturating_sub(1);
        let hi = self.index[b + 1] as usize;
        let slice = &self.starts[lo..hi];
        let n = slice.partition_point(|s| *s <= a);
        if n == 0 {
            return None;
        }
        let j = lo + n - 1;
        (self.ends[j] >= a).then(|| self.sets[j])
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}

/// Immutable matcher over every feed's indicators. Lookups never allocate.
#[derive(Debug, Default)]
pub struct Matcher {
    feeds: Vec<FeedInfo>,
    categories: Vec<String>,
    sets: Vec<Box<[Label]>>,
    hosts: HostTable,
    ranges: RangeTable,
    v6: Vec<(u8, HashMap<u128, u32>)>,
    domains: HashMap<Box<str>, u32>,
    urls: HashMap<Box<str>, u32>,
}

impl Matcher {
    /// The feeds, indexed by [`FeedId`].
    pub fn feeds(&self) -> &[FeedInfo] {
        &self.feeds
    }

    /// Old name of [`Matcher::feeds`].
    pub fn lists(&self) -> &[FeedInfo] {
        &self.feeds
    }

    /// One feed.
    pub fn feed(&self, id: FeedId) -> &FeedInfo {
        &self.feeds[id.0 as usize]
    }

    /// A label's category name.
    pub fn category(&self, l: Label) -> &str {
        self.categories
            .get(l.category as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Distinct IPv4 hosts, IPv4 intervals, IPv6 entries, domains and URLs held.
    pub fn len(&self) -> usize {
        self.hosts.len
            + self.ranges.len()
            + self.v6.iter().map(|(_, t)| t.len()).sum::<usize>()
            + self.domains.len()
            + self.urls.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate heap bytes held by the lookup tables.
    pub fn heap_bytes(&self) -> usize {
        self.hosts.slots.len() * 8
            + self.hosts.per24.len() * 8
            + self.ranges.starts.len() * 12
            + self.ranges.index.len() * 4
            + self
                .sets
                .iter()
                .map(|s| s.len() * std::mem::size_of::<Label>() + 16)
                .sum::<usize>()
            + self.v6.iter().map(|(_, t)| t.len() * 24).sum::<usize>()
            + self
                .domains
                .keys()
                .chain(self.urls.keys())
                .map(|k| k.len() + 24)
                .sum::<usize>()
    }

    #[inline]
    fn ip_set(&self, ip: IpAddr) -> u32 {
        match ip {
            IpAddr::V4(a) => self.v4_set(a),
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    let s = self.v4_set(v4);
                    if s != 0 {
                        return s;
                    }
                }
                let a = u128::from(a);
                for (len, t) in &self.v6 {
                    if let Some(s) = t.get(&(a & v6_mask(*len))) {
                        return *s;
                    }
                }
                0
            }
        }
    }

    #[inline]
    fn v4_set(&self, a: Ipv4Addr) -> u32 {
        let a = u32::from(a);
        if let Some(s) = self.hosts.get(a) {
            return s;
        }
        self.ranges.get(a).unwrap_or(0)
    }

    fn matched(&self, set: u32) -> Option<Match<'_>> {
        (set != 0).then(|| Match {
            labels: &self.sets[set as usize],
            m: self,
        })
    }

    /// Is `ip` listed (directly or inside a block)?
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ip_set(ip) != 0
    }

    /// What lists `ip`, if anything. IPv4-mapped IPv6 addresses are looked up as IPv4.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<Match<'_>> {
        self.matched(self.ip_set(ip))
    }

    /// What lists `domain` or the nearest of its parent domains (down to two labels).
    pub fn lookup_domain(&self, domain: &str) -> Option<Match<'_>> {
        if self.domains.is_empty() {
            return None;
        }
        let d = normalise_domain(domain)?;
        let mut rest = d.as_str();
        loop {
            if let Some(s) = self.domains.get(rest) {
                return self.matched(*s);
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return None,
            }
        }
    }

    /// What lists this exact URL (after normalisation), or its host as a domain.
    pub fn lookup_url(&self, url: &str) -> Option<Match<'_>> {
        let u = normalise_url(url)?;
        if let Some(s) = self.urls.get(u.as_str()) {
            return self.matched(*s);
        }
        let host = u.split_once("://")?.1.split(['/', ':', '?']).next()?;
        match host.parse::<IpAddr>() {
            Ok(ip) => self.lookup(ip),
            Err(_) => self.lookup_domain(host),
        }
    }

    /// Looks up any indicator value: an address (a block is looked up by its network address),
    /// a domain or a URL.
    pub fn lookup_value(&self, v: &IndicatorValue) -> Option<Match<'_>> {
        match v {
            IndicatorValue::Ip(c) => self.lookup(c.addr()),
            IndicatorValue::Domain(d) => self.lookup_domain(d),
            IndicatorValue::Url(u) => self.lookup_url(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_netset;

    fn ind(v: &str) -> Indicator {
        Indicator::new(IndicatorValue::parse(v).unwrap())
    }

    #[test]
    fn hosts_blocks_and_nesting_merge_labels() {
        let mut b = MatcherBuilder::new();
        let a = b.add_feed(FeedInfo::new("a", "attacks")).unwrap();
        let c = b
            .add_feed(FeedInfo {
                name: "c".into(),
                category: "botnet_c2".into(),
                confidence: 90,
                tlp: Tlp::Amber,
            })
            .unwrap();
        for v in ["10.0.0.0/8", "10.1.0.0/16", "1.2.3.4"] {
            b.add(a, &ind(v));
        }
        let mut strong = ind("10.1.2.3");
        strong.confidence = Some(100);
        strong.tlp = Some(Tlp::Red);
        b.add(c, &strong);
        b.add(c, &ind("10.1.0.0/24"));
        let m = b.build();
        let names = |ip: &str| {
            m.lookup(ip.parse().unwrap())
                .map(|x| x.feed_names())
                .unwrap_or_default()
        };
        assert_eq!(names("10.9.9.9"), vec!["a"]);
        assert_eq!(names("10.1.0.77"), vec!["a", "c"]);
        assert_eq!(
            names("10.1.2.3"),
            vec!["a", "c"],
            "host inside blocks of another feed"
        );
        assert_eq!(names("10.1.255.1"), vec!["a"]);
        assert!(names("11.0.0.0").is_empty());
        assert!(names("9.255.255.255").is_empty());
        let hit = m.lookup("10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(hit.max_confidence(), 100);
        assert_eq!(hit.categories(), vec!["attacks", "botnet_c2"]);
        assert_eq!(
            hit.shareable(Tlp::Amber).count(),
            1,
            "the TLP:RED label is held back"
        );
        assert!(m.contains("::ffff:10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn edges_of_the_address_space() {
        let mut b = MatcherBuilder::new();
        let f = b.add_feed(FeedInfo::new("x", "y")).unwrap();
        for v in [
            "0.0.0.0/8",
            "255.255.255.0/24",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            b.add(f, &ind(v));
        }
        let m = b.build();
        for ip in [
            "0.0.0.0",
            "0.255.255.255",
            "255.255.255.0",
            "255.255.255.255",
        ] {
            assert!(m.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!m.contains("1.0.0.0".parse().unwrap()));
        let mut b = MatcherBuilder::new();
        let f = b.add_feed(FeedInfo::new("all", "y")).unwrap();
        b.add(f, &ind("0.0.0.0/0"));
        let m = b.build();
        assert!(m.contains("203.0.113.1".parse().unwrap()));
    }

    #[test]
    fn domains_match_subdomains_and_urls_match_exactly_or_by_host() {
        let mut b = MatcherBuilder::new();
        let f = b
            .add_feed(FeedInfo::new("urlhaus", "malware_download"))
            .unwrap();
        b.add(f, &ind("evil.example"));
        b.add(f, &ind("http://203.0.113.9/bin.sh"));
        b.add(f, &ind("https://files.example/payload.exe"));
        let m = b.build();
        assert!(m.lookup_domain("a.b.EVIL.example.").is_some());
        assert!(m.lookup_domain("notevil.example").is_none());
        assert!(m.lookup_domain("example").is_none());
        assert!(m.lookup_url("HTTP://203.0.113.9:80/bin.sh#x").is_some());
        assert!(m.lookup_url("http://203.0.113.9/other").is_none());
        assert!(
            m.lookup_url("https://x.evil.example/anything").is_some(),
            "host is listed"
        );
        assert!(m.lookup_url("https://files.example/payload.exe").is_some());
        assert!(m.lookup_url("https://files.example/other").is_none());
    }

    #[test]
    fn v6_longest_prefix_first() {
        let mut b = MatcherBuilder::new();
        let f = b.add_feed(FeedInfo::new("v6", "y")).unwrap();
        b.add(f, &ind("2001:db8::/32"));
        b.add(f, &ind("2001:db8::1"));
        let m = b.build();
        assert!(m.contains("2001:db8::1".parse().unwrap()));
        assert!(m.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!m.contains("2001:db9::1".parse().unwrap()));
    }

    #[test]
    fn v4_mapped_indicators_match_however_written() {
        let mut b = MatcherBuilder::new();
        let f = b.add_feed(FeedInfo::new("m", "y")).unwrap();
        b.add(f, &ind("::ffff:192.0.2.1"));
        b.add(f, &ind("::ffff:198.51.100.0/120"));
        b.add(f, &ind("::ffff:0:0/95"));
        let m = b.build();
        for ip in [
            "192.0.2.1",
            "::ffff:192.0.2.1",
            "198.51.100.7",
            "::ffff:198.51.100.7",
        ] {
            assert!(m.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(
            m.contains("::ffff:8.8.8.8".parse().unwrap()),
            "the /95 covers mapped space"
        );
        assert!(!m.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn plain_lists_still_work() {
        let (v, _) = parse_netset("1.2.3.4\n192.0.2.0/24\n");
        let mut b = MatcherBuilder::new();
        b.add_list(FeedInfo::new("demo", "attacks"), v);
        let m = b.build();
        assert_eq!(
            m.lookup("192.0.2.9".parse().unwrap()).unwrap().feed_names(),
            vec!["demo"]
        );
        assert_eq!(m.len(), 2);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn agrees_with_a_linear_scan(
                nets in proptest::collection::vec((any::<u32>(), 0u8..=32, 0usize..3), 1..60),
                probes in proptest::collection::vec(any::<u32>(), 1..80),
            ) {
                let mut b = MatcherBuilder::new();
                let feeds: Vec<FeedId> = (0..3)
                    .map(|i| b.add_feed(FeedInfo::new(format!("f{i}"), "c")).unwrap())
                    .collect();
                let cidrs: Vec<(Cidr, usize)> = nets.iter()
                    .map(|(a, l, f)| (Cidr::new(IpAddr::V4(Ipv4Addr::from(*a)), *l).unwrap(), *f))
                    .collect();
                for (c, f) in &cidrs {
                    b.add(feeds[*f], &Indicator::new(IndicatorValue::Ip(*c)));
                }
                let m = b.build();
                let around = nets.iter().flat_map(|(a, l, _)| {
                    let mask = crate::v4_mask(*l);
                    let s = a & mask;
                    let e = s | !mask;
                    [s, e, s.wrapping_sub(1), e.wrapping_add(1), *a]
                });
                for p in probes.iter().copied().chain(around) {
                    let ip = IpAddr::V4(Ipv4Addr::from(p));
                    let mut expect: Vec<String> = cidrs.iter()
                        .filter(|(c, _)| c.contains(ip))
                        .map(|(_, f)| format!("f{f}"))
                        .collect();
                    expect.sort();
                    expect.dedup();
                    let got: Vec<String> = m.lookup(ip)
                        .map(|x| x.feed_names().into_iter().map(str::to_owned).collect())
                        .unwrap_or_default();
                    prop_assert_eq!(got, expect, "probe {}", ip);
                }
            }
        }
    }
}
