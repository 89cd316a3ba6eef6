//! Auto-detection over every parser: never panics; an event names only addresses in the line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_parse::{parse_line, TimeContext};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = parse_line(data, &TimeContext::utc(1_733_011_200_000), None) {
        // An event keeps its line exactly (less the terminator) and renders as OCSF.
        let text = std::str::from_utf8(data).expect("events come only from UTF-8 lines");
        assert_eq!(e.raw, text.trim_end_matches(['\r', '\n', '\0']));
        let _ = e.to_ocsf();
    }
});
