//! Every feed reader on arbitrary bytes: never panics; what is accepted is counted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_intel::formats::{self, FeedFormat, Report};

fuzz_target!(|data: &[u8]| {
    for f in FeedFormat::ALL {
        if let Ok((v, rep)) = formats::parse(*f, data) {
            assert_eq!(v.len(), rep.accepted);
        }
    }
    let _ = formats::sniff(data);
    let _ = formats::firehol_header(&String::from_utf8_lossy(data));
    let mut rep = Report::default();
    let _ = formats::parse_misp_manifest(data, &mut rep);
    let _ = formats::parse_misp_event(data, &mut rep);
    let _ = formats::parse_taxii_envelope(data, &mut rep);
    let _ = formats::ipv4_tokens(data).count();
});
