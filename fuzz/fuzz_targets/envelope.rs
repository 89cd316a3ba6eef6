//! Syslog envelopes (RFC 5424, RFC 3164, header-less) never panic on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_parse::syslog::{find_clf_time, parse_envelope};
use watchhouse_parse::TimeContext;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let e = parse_envelope(s, &TimeContext::utc(1_733_011_200_000));
        assert!(e.msg.len() <= s.len());
        let _ = find_clf_time(s);
    }
});
