//! Ingest, black-box: the real hub and the real collector, administered with the real CLI.
//!
//! - A batch whose acknowledgement is lost is retried and stored exactly once.
//! - Bad input (invalid UTF-8, oversize lines, unknown formats, broken framing) is counted and
//!   sampled, and never stalls the pipeline.
//! - Wrong, missing and revoked credentials get a 401 with a clear message and store nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, free_port, run, spawn, Client};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one HTTP/1.1 message (headers and a Content-Length body) from `s`.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            if buf.len() >= total {
                let msg = buf[..total].to_vec();
                buf.drain(..total);
                return Ok(Some(msg));
            }
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A proxy in front of the hub that forwards the first `drop_acks` ingest requests but throws
/// their responses away and closes the connection: the hub stored the batch, the collector
/// never hears so.
async fn lossy_proxy(upstream: u16, drop_acks: usize) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = l.accept().await else {
                return;
            };
            let d = d.clone();
            tokio::spawn(async move {
                let mut cbuf = Vec::new();
                while let Ok(Some(req)) = read_message(&mut client, &mut cbuf).await {
                    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    if up.write_all(&req).await.is_err() {
                        return;
                    }
                    let mut ubuf = Vec::new();
                    let Ok(Some(res)) = read_message(&mut up, &mut ubuf).await else {
                        return;
                    };
                    let is_ingest = req.starts_with(b"POST /api/v1/ingest");
                    if is_ingest && d.fetch_add(1, Ordering::SeqCst) < drop_acks {
                        return; // the acknowledgement is lost
                    }
                    if client.write_all(&res).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, dropped)
}

fn iptables_line(i: usize, src: &str, dst: &str, dport: u16, action: &str) -> String {
    format!(
        "Nov 21 06:{:02}:{:02} fw kernel: [{i}.000001] {action} IN=eth0 OUT= SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL=50 ID={i} PROTO=TCP SPT={} DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0\n",
        (i / 60) % 60,
        i % 60,
        10_000 + i
    )
}

fn first_number(s: &str) -> i64 {
    s.split(|c: char| !c.is_ascii_digit())
        .find(|t| !t.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

async fn total_events(admin: &Client, member: i64) -> anyhow::Result<u64> {
    let (s, v) = admin
        .get_json(&format!("/api/v1/members/{member}/summary"))
        .await?;
    assert_eq!(s, StatusCode::OK, "{v}");
    Ok(v["total_events"].as_u64().unwrap())
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        f.write_all(l).unwrap();
    }
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_acknowledgements_bad_input_and_bad_credentials() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("hub");
    let data_s = data.to_str().unwrap();
    let feed = dir.path().join("bad.netset");
    std::fs::write(&feed, "# test list\n203.0.113.0/24\n")?;

    // Administer with the real CLI.
    let force = first_number(&run(
        &[
            "admin",
            "--data-dir",
            data_s,
            "force",
            "add",
            "--name",
            "Testshire",
            "--region",
            "Test",
        ],
        None,
    )?);
    let member = first_number(&run(
        &[
            "admin",
            "--data-dir",
            data_s,
            "member",
            "add",
            "--force",
            &force.to_string(),
            "--name",
            "Test Ltd",
            "--network",
            "198.51.100.0/28",
        ],
        None,
    )?);
    run(
        &[
            "admin",
            "--data-dir",
            data_s,
            "user",
            "add",
            "--email",
            "root@test.example",
            "--name",
            "Root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    )?;
    let token = run(
        &[
            "admin",
            "--data-dir",
            data_s,
            "token",
            "create",
            "--member",
            &member.to_string(),
        ],
        None,
    )?
    .trim()
    .to_owned();
    assert!(token.starts_with("whe_"));

    let hub_port = free_port();
    let hub_addr = format!("127.0.0.1:{hub_port}");
    let feed_arg = format!("test_list={}", feed.display());
    let _hub = spawn(
        dir.path(),
        "hub",
        &[
            "hub",
            "--data-dir",
            data_s,
            "--listen",
            &hub_addr,
            "--feed",
            &feed_arg,
        ],
        &[],
    )?;
    let hub_url = format!("http://{hub_addr}");
    let mut admin = Client::new(&hub_url);
    eventually(Duration::from_secs(30), "the hub", || async {
        Ok(reqwest::get(format!("{hub_url}/healthz"))
            .await
            .ok()
            .filter(|r| r.status().is_success()))
    })
    .await?;
    assert_eq!(
        admin
            .login("root@test.example", "a long enough password")
            .await?,
        StatusCode::SEE_OTHER
    );

    // 300 good inbound lines, plus bad input of every kind, in a file the collector follows.
    let log = dir.path().join("firewall.log");
    let mut lines: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let src = if i % 3 == 0 {
                "203.0.113.7".to_string()
            } else {
                format!("198.18.0.{}", i % 200)
            };
            let action = if i % 50 == 0 {
                "[UFW ALLOW]"
            } else {
                "[UFW BLOCK]"
            };
            iptables_line(i, &src, "198.51.100.10", 20 + (i % 1000) as u16, action).into_bytes()
        })
        .collect();
    lines.push(iptables_line(1000, "192.168.1.5", "192.168.1.9", 445, "[UFW BLOCK]").into_bytes());
    lines.push(b"\xff\xfe\xfd not utf-8 SRC= DST=\n".to_vec());
    lines.push(b"Nov 21 06:00:00 fw sshd[1]: Accepted password for bob\n".to_vec());
    lines.push(
        iptables_line(1001, "203.0.113.999", "198.51.100.10", 22, "[UFW BLOCK]").into_bytes(),
    );
    let mut huge = vec![b'A'; 70 * 1024];
    huge.push(b'\n');
    lines.push(huge);
    write_lines(&log, &lines);

    let (proxy_port, dropped) = lossy_proxy(hub_port, 1).await;
    let tcp_port = free_port();
    let col_dir = dir.path().join("collector");
    let mut collector = spawn(
        dir.path(),
        "collector",
        &[
            "collect",
            "--hub",
            &format!("http://127.0.0.1:{proxy_port}"),
            "--data-dir",
            col_dir.to_str().unwrap(),
            "--name",
            "test firewall",
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            &format!("127.0.0.1:{tcp_port}"),
            "--file",
            log.to_str().unwrap(),
        ],
        &[("WATCHHOUSE_ENROL_TOKEN", &token)],
    )?;

    eventually(Duration::from_secs(60), "300 events at the hub", || async {
        let n = total_events(&admin, member).await?;
        assert!(
            n <= 300,
            "stored {n} > 300: a retried batch was stored twice"
        );
        Ok((n == 300).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncollector log:\n{}", collector.log()))?;
    // The first delivery was stored but its acknowledgement lost; wait for the retry.
    eventually(Duration::from_secs(30), "the collector's retry", || async {
        Ok((dropped.load(Ordering::SeqCst) >= 2).then_some(()))
    })
    .await?;
    // Give any further retry time to arrive; the count must not move.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(total_events(&admin, member).await?, 300);
    let metrics = admin.get("/metrics").await?.text().await?;
    assert!(
        !metrics.contains("watchhouse_ingest_batches_total{result=\"duplicate\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watchhouse_events_ingested_total 300"),
        "{metrics}"
    );

    // Alerts: the listed source, blocked (low) and let through (high).
    let (_, alerts) = admin
        .get_json(&format!("/api/v1/members/{member}/alerts"))
        .await?;
    let sev: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["severity"].as_str().unwrap())
        .collect();
    assert!(sev.contains(&"high") && sev.contains(&"low"), "{sev:?}");

    // Bad input was counted per format and reason, sampled, and internal traffic withheld.
    let stats = eventually(Duration::from_secs(30), "collector stats", || async {
        let (_, v) = admin
            .get_json(&format!("/api/v1/members/{member}/collectors"))
            .await?;
        let s = v["collectors"][0]["stats"].clone();
        Ok((s["unparsed"]["unknown:oversize"].as_u64() == Some(1)).then_some(s))
    })
    .await?;
    assert_eq!(stats["unparsed"]["unknown:invalid_utf8"], 1, "{stats}");
    assert_eq!(stats["unparsed"]["unknown:unknown_format"], 1, "{stats}");
    assert_eq!(stats["unparsed"]["netfilter:bad_src"], 1, "{stats}");
    assert_eq!(stats["withheld"]["internal"], 1, "{stats}");
    assert_eq!(stats["parsed"]["netfilter"], 301, "{stats}");
    let samples = stats["samples"].as_array().unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s["reason"] == "bad_src"
                && s["line"].as_str().unwrap().contains("203.0.113.999"))
    );

    // A sender that stalls mid-frame (and keeps its connection open) stalls no one else.
    let mut stalled = TcpStream::connect(("127.0.0.1", tcp_port)).await?;
    stalled
        .write_all(b"500 <13>Nov 21 06:00:00 half a message that never ends")
        .await?;
    stalled.flush().await?;
    // Hostile TCP syslog (oversize frame, broken octet count) does not stall the good lines after it.
    let mut tcp = TcpStream::connect(("127.0.0.1", tcp_port)).await?;
    let mut hostile = b"99999999 <1>".to_vec();
    hostile.extend(vec![b'x'; 100_000]);
    tcp.write_all(b"70000 <13>").await?;
    tcp.write_all(&vec![b'y'; 69_990]).await?;
    for i in 0..5 {
        let l = iptables_line(2000 + i, "198.18.9.9", "198.51.100.10", 8080, "[UFW BLOCK]");
        tcp.write_all(format!("<4>{l}").as_bytes()).await?;
    }
    tcp.flush().await?;
    drop(tcp);
    eventually(
        Duration::from_secs(30),
        "lines after hostile TCP input",
        || async { Ok((total_events(&admin, member).await? == 305).then_some(())) },
    )
    .await?;
    // The stalled sender is still connected, and held nothing up.
    drop(stalled);

    // A batch posted twice by hand: stored once, the retry says so.
    let cred: Value = serde_json::from_slice(&std::fs::read(col_dir.join("credential.json"))?)?;
    let credential = cred["credential"].as_str().unwrap().to_owned();
    let now = watchhouse_hub_now();
    let batch_id = uuid::Uuid::now_v7();
    let batch = json!({
        "version": 1, "batch_id": batch_id, "collector_version": "test", "sealed_at_ms": now,
        "events": [
            {"time_ms": now, "action": "deny", "protocol": 6, "src_ip": "198.18.1.1", "src_port": 1, "dst_ip": "198.51.100.10", "dst_port": 22, "direction": "inbound", "format": "netfilter", "raw": "x"},
            {"time_ms": now, "action": "deny", "protocol": 6, "src_ip": "198.18.1.2", "src_port": 1, "dst_ip": "198.51.100.10", "dst_port": 23, "direction": "inbound", "format": "netfilter", "raw": "y"},
            {"time_ms": now, "action": "allow", "protocol": 6, "src_ip": "10.0.0.1", "src_port": 1, "dst_ip": "10.0.0.2", "dst_port": 23, "direction": "internal", "format": "netfilter", "raw": "z"},
            {"time_ms": 1000, "action": "deny", "protocol": 6, "src_ip": "198.18.1.3", "src_port": 1, "dst_ip": "198.51.100.10", "dst_port": 23, "direction": "inbound", "format": "netfilter", "raw": "old"}
        ]
    });
    let http = reqwest::Client::new();
    let post = |b: &Value, auth: Option<&str>| {
        let mut rb = http.post(format!("{hub_url}/api/v1/ingest")).json(b);
        if let Some(a) = auth {
            rb = rb.bearer_auth(a);
        }
        rb.send()
    };
    let r1: Value = post(&batch, Some(&credential)).await?.json().await?;
    assert_eq!(
        (
            r1["accepted"].as_u64(),
            r1["duplicate"].as_bool(),
            r1["rejected"].as_u64()
        ),
        (Some(2), Some(false), Some(2)),
        "{r1}"
    );
    let r2: Value = post(&batch, Some(&credential)).await?.json().await?;
    assert_eq!(
        (r2["accepted"].as_u64(), r2["duplicate"].as_bool()),
        (Some(2), Some(true)),
        "{r2}"
    );
    assert_eq!(total_events(&admin, member).await?, 307);
    let metrics = admin.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains("watchhouse_ingest_events_rejected_total{reason=\"internal_traffic\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watchhouse_ingest_events_rejected_total{reason=\"time_out_of_range\"} 1"),
        "{metrics}"
    );

    // Gzip bodies are accepted; a decompression bomb is refused, not expanded.
    let gz = |data: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let mut zipped = batch.clone();
    zipped["batch_id"] = json!(uuid::Uuid::now_v7());
    let r = http
        .post(format!("{hub_url}/api/v1/ingest"))
        .bearer_auth(&credential)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz(&serde_json::to_vec(&zipped)?))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(total_events(&admin, member).await?, 309);
    let bomb = gz(&vec![b' '; 80 * 1024 * 1024]);
    assert!(
        bomb.len() < 200_000,
        "the bomb is small on the wire: {}",
        bomb.len()
    );
    let r = http
        .post(format!("{hub_url}/api/v1/ingest"))
        .bearer_auth(&credential)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json::<Value>().await?["code"], "batch_too_large");

    // Malformed bodies get a clear 400.
    let r = http
        .post(format!("{hub_url}/api/v1/ingest"))
        .bearer_auth(&credential)
        .header("content-type", "application/json")
        .body("{\"version\": 1, \"events\": [")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await?["code"], "invalid_batch");
    let mut v2 = batch.clone();
    v2["version"] = json!(2);
    v2["batch_id"] = json!(uuid::Uuid::now_v7());
    let r = post(&v2, Some(&credential)).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await?["code"], "unsupported_version");

    // Wrong and missing credentials: 401, clear message, nothing stored.
    let mut other = batch.clone();
    other["batch_id"] = json!(uuid::Uuid::now_v7());
    for (auth, code) in [
        (Some("whc_wrong"), "invalid_credential"),
        (None, "missing_credential"),
    ] {
        let r = post(&other, auth).await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await?;
        assert_eq!(body["code"], code);
        assert!(body["message"].as_str().unwrap().len() > 20);
    }
    let r = http
        .post(format!("{hub_url}/api/v1/enrol"))
        .json(&json!({"token": token, "name": "again", "version": "x"}))
        .send()
        .await?;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "an enrolment token works once"
    );
    assert_eq!(total_events(&admin, member).await?, 309);

    // Revoked: the collector's credential stops working at once; nothing more is stored.
    let listed = run(&["admin", "--data-dir", data_s, "collector", "list"], None)?;
    let col_id = first_number(&listed);
    run(
        &[
            "admin",
            "--data-dir",
            data_s,
            "collector",
            "revoke",
            &col_id.to_string(),
        ],
        None,
    )?;
    let r = post(&other, Some(&credential)).await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    write_lines(
        &log,
        &[iptables_line(3000, "198.18.7.7", "198.51.100.10", 22, "[UFW BLOCK]").into_bytes()],
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(total_events(&admin, member).await?, 309);
    assert!(
        collector.log().contains("invalid_credential"),
        "the collector should log the refusal"
    );
    // The refused batch is still spooled for when the member re-enrols, not lost.
    let spooled = std::fs::read_dir(col_dir.join("spool"))?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "batch"))
        .count();
    assert!(spooled >= 1, "the refused batch must stay in the spool");
    let status = collector.interrupt(Duration::from_secs(20))?;
    assert!(status.success());
    admin.session = None;
    Ok(())
}

fn watchhouse_hub_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
