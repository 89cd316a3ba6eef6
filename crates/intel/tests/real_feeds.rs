//! Real FireHOL-collection feeds (snapshot of Nov 2018, copied from the project's shared data):
//! every entry is read, headers are comments that carry the feed's metadata, counts agree with
//! the headers, and lookups agree with the lists.

use std::net::IpAddr;

use watchhouse_intel::formats::{self, FeedFormat};
use watchhouse_intel::{parse_netset, FeedInfo, IndicatorValue, MatcherBuilder};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn firehol_style_feeds_load_completely_and_match() {
    let drop = include_str!("fixtures/spamhaus_drop.netset");
    let feodo = include_str!("fixtures/feodo.ipset");
    let (d, drep) = parse_netset(drop);
    let (f, frep) = parse_netset(feodo);
    // The headers say "Entries: 773 subnets" and list one address per non-comment line.
    assert_eq!((drep.accepted, drep.skipped), (773, 0));
    let feodo_lines = feodo
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!((frep.accepted, frep.skipped), (feodo_lines, 0));
    assert!(d.iter().all(|c| !c.is_host()), "DROP lists networks");
    assert!(f.iter().all(|c| c.is_host()), "Feodo lists addresses");

    let mut b = MatcherBuilder::new();
    b.add_list(FeedInfo::new("spamhaus_drop", "reputation"), d.clone());
    b.add_list(FeedInfo::new("feodo", "botnet_c2"), f.clone());
    let m = b.build();
    let names = |s: &str| m.lookup(ip(s)).map(|x| x.feed_names()).unwrap_or_default();
    assert_eq!(names("1.10.16.5"), vec!["spamhaus_drop"]);
    assert_eq!(names("1.10.31.255"), vec!["spamhaus_drop"]);
    assert!(names("1.10.32.0").is_empty());
    assert!(names("8.8.8.8").is_empty());
    assert!(m
        .lookup(f[0].addr())
        .unwrap()
        .feed_names()
        .contains(&"feodo"));
    // Every listed network matches at its first address and at one inside it.
    for c in &d {
        assert!(m.contains(c.addr()), "{c}");
        assert!(m.contains(c.nth(12345)), "{c}");
    }
}

#[test]
fn every_shared_feed_reads_with_its_declared_count_and_header_metadata() {
    for (text, name, category, declared) in [
        (
            include_str!("fixtures/firehol_level1.netset"),
            "firehol_level1",
            "attacks",
            6801,
        ),
        (
            include_str!("fixtures/tor_exits.ipset"),
            "tor_exits",
            "anonymizers",
            823,
        ),
        (
            include_str!("fixtures/dshield.netset"),
            "dshield",
            "attacks",
            20,
        ),
        (
            include_str!("fixtures/spamhaus_edrop.netset"),
            "spamhaus_edrop",
            "reputation",
            105,
        ),
    ] {
        let (v, rep) = formats::parse(FeedFormat::Netset, text.as_bytes()).unwrap();
        assert_eq!(rep.skipped, 0, "{name}: {:?}", rep.samples);
        assert_eq!(v.len(), declared, "{name}");
        let h = formats::firehol_header(text);
        assert_eq!(h.name.as_deref(), Some(name));
        assert_eq!(h.category.as_deref(), Some(category), "{name}");
        assert_eq!(h.entries, Some(declared), "{name}");
        assert!(h.maintainer.is_some(), "{name}");
        assert!(v.iter().all(|i| matches!(i.value, IndicatorValue::Ip(_))));
    }
}

#[test]
fn nested_lists_of_different_feeds_keep_both_labels() {
    // firehol_level1 includes spamhaus_drop and feodo: an address on both reports both feeds.
    let (l1, _) = formats::parse(
        FeedFormat::Netset,
        include_bytes!("fixtures/firehol_level1.netset"),
    )
    .unwrap();
    let (drop, _) = parse_netset(include_str!("fixtures/spamhaus_drop.netset"));
    let mut b = MatcherBuilder::new();
    let f1 = b
        .add_feed(FeedInfo::new("firehol_level1", "attacks"))
        .unwrap();
    for i in &l1 {
        b.add(f1, i);
    }
    b.add_list(FeedInfo::new("spamhaus_drop", "reputation"), drop.clone());
    let m = b.build();
    let mut both = 0;
    for c in &drop {
        let hit = m.lookup(c.addr()).unwrap();
        if hit.feed_names() == vec!["firehol_level1", "spamhaus_drop"] {
            both += 1;
        }
    }
    assert!(
        both > 700,
        "most DROP networks are inside level1 as well ({both})"
    );
}
