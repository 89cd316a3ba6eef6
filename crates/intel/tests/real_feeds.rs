//! Real FireHOL-collection feeds (snapshot of Nov 2018, copied from the project's shared data):
//! every entry is read, headers are comments, and lookups agree with the lists.

use std::net::IpAddr;

use watchhouse_intel::{parse_netset, ListInfo, MatcherBuilder};

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
    b.add_list(
        ListInfo {
            name: "spamhaus_drop".into(),
            category: "reputation".into(),
        },
        d.clone(),
    );
    b.add_list(
        ListInfo {
            name: "feodo".into(),
            category: "botnet_c2".into(),
        },
        f.clone(),
    );
    let m = b.build();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        m.names(m.lookup(ip("1.10.16.5")).unwrap()),
        vec!["spamhaus_drop"]
    );
    assert_eq!(
        m.names(m.lookup(ip("1.10.31.255")).unwrap()),
        vec!["spamhaus_drop"]
    );
    assert!(m.lookup(ip("1.10.32.0")).is_none());
    assert!(m.lookup(ip("8.8.8.8")).is_none());
    let c2 = f[0].addr();
    assert!(m.names(m.lookup(c2).unwrap()).contains(&"feodo"));
    // Every listed network matches at its first address and at one inside it.
    for c in &d {
        assert!(m.lookup(c.addr()).is_some(), "{c}");
        assert!(m.lookup(c.nth(12345)).is_some(), "{c}");
    }
}
