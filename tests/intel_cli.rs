//! `watchhouse intel check`, black-box: answers per value (arguments or stdin, text or JSON),
//! filters log lines like grepcidr, and exits like grep (0 listed, 1 not, 2 error).

mod common;

const DROP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/intel/tests/fixtures/spamhaus_drop.netset"
);
const TOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/intel/tests/fixtures/tor_exits.ipset"
);

fn check(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut all = vec!["intel", "check"];
    all.extend_from_slice(args);
    common::run_status(&all, stdin)
}

#[test]
fn answers_per_value_with_metadata() {
    let (code, out, _) = check(&["--feed", DROP, "--feed", TOR, "1.10.16.7", "8.8.4.4"], "");
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0]
            .starts_with("1.10.16.7\tlisted: spamhaus_drop (reputation, confidence 50, TLP:CLEAR)"),
        "{out}"
    );
    assert_eq!(lines[1], "8.8.4.4\tnot listed");
    // From stdin, as JSON; nothing listed exits 1; a bad value is an answer, not a crash.
    let (code, out, _) = check(&["--feed", DROP, "--json"], "8.8.4.4\nnot-an-address!\n\n");
    assert_eq!(code, 1);
    let v: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["listed"], false);
    assert!(v[1]["error"]
        .as_str()
        .unwrap()
        .contains("not an IP address"));
}

#[test]
fn filters_lines_like_grepcidr_and_fails_clearly() {
    let lines = "SRC=1.10.16.9 DST=10.0.0.1 PROTO=TCP\nSRC=8.8.4.4 DST=10.0.0.1\nnothing here\n";
    let (code, out, _) = check(&["--feed", DROP, "--filter"], lines);
    assert_eq!(code, 0);
    assert_eq!(out, "SRC=1.10.16.9 DST=10.0.0.1 PROTO=TCP\n");
    let (code, _, err) = check(&["--feed", "/nonexistent/list.txt", "1.2.3.4"], "");
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot open feed /nonexistent/list.txt"),
        "{err}"
    );
    let (code, _, err) = check(&["--feed", &format!("stix:{DROP}"), "1.2.3.4"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("name the format as FORMAT:PATH"), "{err}");
    let (code, out, _) = check(&["--help"], "");
    assert_eq!(code, 0);
    assert!(out.contains("--filter") && out.contains("[FORMAT:]PATH"));
}
