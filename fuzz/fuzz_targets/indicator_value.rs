//! Indicator values typed by people or found in feeds: never panic; a parsed value prints to
//! text that parses to the same value; matching it after building never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_intel::{FeedInfo, Indicator, IndicatorValue, MatcherBuilder};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(v) = IndicatorValue::parse(s) {
            assert_eq!(IndicatorValue::parse(&v.to_string()).unwrap(), v);
            let mut b = MatcherBuilder::new();
            let f = b.add_feed(FeedInfo::new("f", "c")).unwrap();
            b.add(f, &Indicator::new(v.clone()));
            let m = b.build();
            assert!(m.lookup_value(&v).is_some(), "{v}");
        }
    }
});
