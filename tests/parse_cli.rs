//! `watchhouse parse`, black-box: the real binary reads lines on stdin and prints OCSF Network
//! Activity JSON, reports the lines it could not read on stderr, honours `--format` for every
//! parser, and refuses an unknown format with the list of known ones.

mod common;

use serde_json::Value;

const UFW: &str = "Nov 21 06:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 \
    SRC=45.33.32.156 DST=198.51.100.2 LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT=40000 DPT=22 \
    WINDOW=1024 RES=0x00 SYN URGP=0";
const FORTIGATE: &str =
    "date=2024-11-21 time=06:00:00 devname=\"FGT-HQ\" devid=\"FG100F0000000001\" \
    logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" \
    eventtime=1732168800 srcip=203.0.113.9 srcport=1024 srcintf=\"wan1\" dstip=198.51.100.10 \
    dstport=3389 dstintf=\"internal\" sessionid=1 proto=6 action=\"deny\" policyid=7 \
    service=\"RDP\" sentbyte=40 rcvdbyte=0 sentpkt=1";

/// Runs `watchhouse parse ARGS` with `stdin`; (exit success, stdout, stderr).
fn parse(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut all = vec!["parse"];
    all.extend_from_slice(args);
    let (code, out, err) = common::run_status(&all, stdin);
    (code == 0, out, err)
}

#[test]
fn lines_become_ocsf_network_activity_and_bad_lines_are_reported() {
    let input = format!("{UFW}\nthis is not a firewall line\n{FORTIGATE}\n");
    let (ok, out, err) = parse(&[], &input);
    assert!(ok, "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{out}");
    for e in &events {
        assert_eq!(e["class_uid"], 4001, "{e}");
    }
    let (ufw, forti) = (&events[0], &events[1]);
    assert_eq!(ufw["src_endpoint"]["ip"], "45.33.32.156");
    assert_eq!(ufw["dst_endpoint"]["port"], 22);
    assert_eq!(ufw["connection_info"]["protocol_name"], "tcp");
    assert_eq!(ufw["disposition"], "Blocked");
    assert_eq!(ufw["raw_data"], UFW);
    assert_eq!(forti["src_endpoint"]["ip"], "203.0.113.9");
    assert_eq!(forti["dst_endpoint"]["port"], 3389);
    assert_eq!(forti["metadata"]["product"]["vendor_name"], "Fortinet");
    assert_eq!(forti["time"], 1_732_168_800_000i64);
    assert!(
        err.contains("line 2: ") && err.contains("this is not a firewall line"),
        "{err}"
    );
    assert!(err.contains("parsed 2 lines, could not parse 1"), "{err}");
}

#[test]
fn a_format_given_is_used_for_every_line() {
    let input = format!("{UFW}\n{FORTIGATE}\n");
    let (ok, out, err) = parse(&["--format", "fortigate", "--summary"], &input);
    assert!(ok, "{err}");
    assert!(out.is_empty(), "--summary prints no events: {out}");
    // The netfilter line is not read as FortiGate: it is counted as not parsed.
    assert!(err.contains("  fortigate: 1"), "{err}");
    assert!(err.contains("parsed 1 lines, could not parse 1"), "{err}");
    // Aliases name the same parser.
    let (ok, out, err) = parse(&["--format", "ufw"], &input);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("45.33.32.156"), "{out}");
}

#[test]
fn an_unknown_format_is_refused_with_the_known_ones() {
    let (ok, _, err) = parse(&["--format", "bogus"], "");
    assert!(!ok);
    assert!(err.contains("unknown format `bogus`"), "{err}");
    for name in ["netfilter", "fortigate", "cisco_asa", "suricata"] {
        assert!(err.contains(name), "{name} missing: {err}");
    }
}

/// A file of bytes: `watchhouse parse FILE --summary`; (exit success, stderr).
fn parse_file_summary(bytes: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.log");
    std::fs::write(&path, bytes).unwrap();
    let (code, _, err) = common::run_status(&["parse", "--summary", path.to_str().unwrap()], "");
    (code == 0, err)
}

/// Hostile lines among good ones: an oversize line, a line that is not UTF-8, CRLF endings, an
/// empty line and a last line without its newline. Each bad line is counted once with its
/// reason, and every good line around it is still read.
#[test]
fn bad_lines_are_counted_and_the_good_ones_around_them_read() {
    let mut input = Vec::new();
    input.extend_from_slice(UFW.as_bytes());
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&vec![b'x'; 70 * 1024]);
    input.push(b'\n');
    input.extend_from_slice(UFW.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(b"Nov 21 06:00:00 fw kernel: \xff\xfe SRC=1.2.3.4 DST=5.6.7.8\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(FORTIGATE.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(UFW.as_bytes());
    let (ok, err) = parse_file_summary(&input);
    assert!(ok, "{err}");
    assert!(err.contains("netfilter: 3"), "{err}");
    assert!(err.contains("fortigate: 1"), "{err}");
    assert!(err.contains("not parsed (invalid_utf8): 1"), "{err}");
    assert!(err.contains("oversize"), "{err}");
    assert!(err.contains("parsed 4 lines, could not parse 2"), "{err}");
}

/// A line longer than anything the reader holds at once (several MiB without a newline) is
/// refused as oversize without being kept in memory, and reading goes on after it.
#[test]
fn a_line_of_megabytes_is_skipped_and_reading_goes_on() {
    let mut input = Vec::new();
    input.extend_from_slice(&vec![b'y'; 5 << 20]);
    input.push(b'\n');
    input.extend_from_slice(UFW.as_bytes());
    input.push(b'\n');
    let (ok, err) = parse_file_summary(&input);
    assert!(ok, "{err}");
    assert!(err.contains("line 1: oversize"), "{err}");
    assert!(err.contains("parsed 1 lines, could not parse 1"), "{err}");
}

/// Many lines, so that reads end mid-line and mid-character: every line is read once, and a
/// line of multi-byte text that straddles a read is neither split nor refused.
#[test]
fn lines_across_reads_are_read_whole() {
    let mut input = Vec::new();
    let mut want = 0;
    for i in 0..40_000u32 {
        if i % 1000 == 7 {
            // Valid UTF-8 that no parser takes: unknown_format, not invalid_utf8.
            input.extend_from_slice(
                "Nov 21 06:00:00 fw app: é€😀 not a firewall line "
                    .repeat(3)
                    .as_bytes(),
            );
        } else {
            input.extend_from_slice(UFW.replace("ID=1 ", &format!("ID={i} ")).as_bytes());
            want += 1;
        }
        input.push(b'\n');
    }
    let (ok, err) = parse_file_summary(&input);
    assert!(ok, "{err}");
    assert!(err.contains(&format!("netfilter: {want}")), "{err}");
    assert!(err.contains("not parsed (unknown_format): 40"), "{err}");
    assert!(!err.contains("invalid_utf8"), "{err}");
    assert!(
        err.contains(&format!("parsed {want} lines, could not parse 40")),
        "{err}"
    );
}
