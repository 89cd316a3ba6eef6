//! The STIX pattern reader on arbitrary text: never panics, and whatever it reads writes back to
//! a pattern that reads the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_intel::stix::{parse_pattern, pattern_for};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(values) = parse_pattern(s) {
            for v in values {
                assert_eq!(parse_pattern(&pattern_for(&v)).unwrap(), vec![v]);
            }
        }
    }
});
