//! The panos parser, forced, on arbitrary input: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_event::Format;
use watchhouse_parse::{parse_line, TimeContext};

fuzz_target!(|data: &[u8]| {
    let f = Format::from_name("panos").expect("format name");
    if let Ok(e) = parse_line(data, &TimeContext::utc(1_733_011_200_000), Some(f)) {
        assert_eq!(e.format, f);
        let _ = e.to_ocsf();
    }
});
