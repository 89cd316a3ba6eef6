//! Notifications end to end, against a real SMTP server (Python's aiosmtpd, installed into
//! `target/ci-venv` on first use) and a webhook receiver: urgent alerts arriving together come as
//! one email per recipient, the per-recipient hourly limit holds the rest back, webhooks carry a
//! valid HMAC signature, preferences are obeyed, and the daily digest lists every alert.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, free_port, python_with, run, spawn, Client, Proc, Site};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Smtp {
    _child: std::process::Child,
    out: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self._child.kill();
    }
}

/// The messages the SMTP server received: (to, subject, whole text).
fn messages(smtp: &Smtp) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(&smtp.out).unwrap_or_default();
    text.split("---------- MESSAGE FOLLOWS ----------")
        .skip(1)
        .map(|m| {
            let header = |h: &str| {
                m.lines()
                    .find_map(|l| l.strip_prefix(h))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            };
            (header("To:"), header("Subject:"), m.to_owned())
        })
        .collect()
}

fn ufw(t_ms: i64, src: &str, dst: &str, dport: u16) -> String {
    let t = jiff::Timestamp::from_millisecond(t_ms).unwrap();
    format!(
        "<4>1 {t} fw kernel - - - [UFW ALLOW] IN=eth0 OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 \
         SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT=40000 DPT={dport} \
         WINDOW=1024 RES=0x00 SYN URGP=0\n"
    )
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
    }
}

type Hooks = Arc<Mutex<Vec<(String, String)>>>;

async fn hook_receiver() -> anyhow::Result<(String, Hooks)> {
    let got: Hooks = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let sig = headers
                    .get("x-watchhouse-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                g.lock().unwrap().push((sig, body));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok((url, got))
}

fn hub(site: &Site, smtp_port: u16, digest_hour: u32) -> anyhow::Result<Proc> {
    let port = smtp_port.to_string();
    let hour = digest_hour.to_string();
    // Weekly reports go out today (so the test sees them) on the second start.
    let today = jiff::Timestamp::now()
        .as_millisecond()
        .div_euclid(86_400_000);
    let weekday = ((today + 3).rem_euclid(7)).to_string();
    spawn(
        site.dir.path(),
        "hub",
        &["hub", "--data-dir", &site.data, "--listen", &site.addr],
        &[
            ("WATCHHOUSE__HUB__SMTP_HOST", "127.0.0.1"),
            ("WATCHHOUSE__HUB__SMTP_PORT", &port),
            ("WATCHHOUSE__HUB__SMTP_SECURITY", "none"),
            (
                "WATCHHOUSE__HUB__SMTP_FROM",
                "Watchhouse <alerts@hub.example>",
            ),
            ("WATCHHOUSE__HUB__PUBLIC_URL", "https://hub.example"),
            ("WATCHHOUSE__HUB__NOTIFY_INTERVAL_SECS", "1"),
            ("WATCHHOUSE__HUB__NOTIFY_MAX_PER_HOUR", "2"),
            ("WATCHHOUSE__HUB__WEBHOOK_ALLOW_HTTP", "true"),
            ("WATCHHOUSE__HUB__UPLOAD_INTERVAL_MS", "500"),
            ("WATCHHOUSE__HUB__DIGEST_HOUR_UTC", &hour),
            ("WATCHHOUSE__HUB__WEEKLY_REPORT_WEEKDAY", &weekday),
        ],
    )
}

async fn wait_up(site: &Site) -> anyhow::Result<()> {
    common::wait_healthy(&site.url).await
}

fn verify(secret: &str, sig: &str, body: &str) -> bool {
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|s| s.split_once(",v1=")) else {
        return false;
    };
    let expected = watchhouse_hub::notify::sign(secret, t.parse().unwrap_or(0), body.as_bytes());
    expected == format!("t={t},v1={v1}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_emails_webhooks_limits_preferences_and_the_digest() -> anyhow::Result<()> {
    let py = python_with("aiosmtpd", "aiosmtpd");
    let site = Site::new()?;
    let smtp_port = free_port();
    let out = site.dir.path().join("smtp.out");
    let child = Command::new(&py)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Debugging",
            "-l",
            &format!("127.0.0.1:{smtp_port}"),
        ])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::fs::File::create(&out)?)
        .stderr(Stdio::null())
        .spawn()?;
    let smtp = Smtp { _child: child, out };
    for (email, role) in [
        ("m@member.example", "member_admin"),
        ("v@member.example", "member_viewer"),
    ] {
        run(
            &[
                "admin",
                "--data-dir",
                &site.data,
                "user",
                "add",
                "--email",
                email,
                "--name",
                "M",
                "--role",
                role,
                "--member",
                "1",
                "--password-stdin",
            ],
            Some("correct horse battery\n"),
        )?;
    }
    // No digest or weekly report from the first start: they go out once the UTC hour reaches
    // `digest_hour_utc`, and no hour reaches 24 (23 did at 23:00 UTC, when this test failed).
    // The second start below sends them.
    let mut hub1 = hub(&site, smtp_port, 24)?;
    wait_up(&site).await?;
    let admin = site.admin().await?;
    // The viewer wants no urgent email, only the digest.
    let mut viewer = Client::new(&site.url);
    viewer
        .login("v@member.example", "correct horse battery")
        .await?;
    let (s, _) = viewer.get_json("/api/v1/me/notifications").await?;
    assert_eq!(s, StatusCode::OK);
    let r = viewer
        .with_csrf_put(
            "/api/v1/me/notifications",
            &json!({"urgent_email": false, "daily_digest": true}),
        )
        .await?;
    assert_eq!(r, StatusCode::OK);
    // A webhook for the member; the secret is shown once.
    let (url, hooks) = hook_receiver().await?;
    let (s, h) = admin
        .post_json("/api/v1/members/1/webhooks", &json!({"url": url}))
        .await?;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let secret = h["secret"].as_str().unwrap().to_owned();
    let (_, listed) = admin.get_json("/api/v1/members/1/webhooks").await?;
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "never shown again"
    );

    let log = site.dir.path().join("fw.log");
    append(&log, &[]);
    let _col = site.start_collector(&["--file", log.to_str().unwrap()], &[])?;
    let now = jiff::Timestamp::now().as_millisecond();
    // Wave 1: three risky services exposed at once → one grouped email to the member admin.
    append(
        &log,
        &[
            ufw(now, "45.33.32.1", "198.51.100.1", 3389),
            ufw(now, "45.33.32.1", "198.51.100.2", 445),
            ufw(now, "45.33.32.1", "198.51.100.3", 23),
        ],
    );
    let to_m = |smtp: &Smtp| {
        messages(smtp)
            .into_iter()
            .filter(|m| m.0.contains("m@member.example"))
            .collect::<Vec<_>>()
    };
    let first = eventually(
        Duration::from_secs(30),
        "the first urgent email",
        || async { Ok(to_m(&smtp).first().cloned()) },
    )
    .await?;
    assert!(
        first.1.starts_with("[Watchhouse] 3 urgent alerts")
            || first.1.starts_with("[Watchhouse] Act now"),
        "{first:?}"
    );
    assert!(
        first.2.contains("https://hub.example/alerts/"),
        "links to the alert"
    );
    // Wave 2 and 3: one more each; the limit is two messages an hour.
    tokio::time::sleep(Duration::from_secs(2)).await;
    append(&log, &[ufw(now + 1000, "45.33.32.1", "198.51.100.4", 5900)]);
    eventually(
        Duration::from_secs(30),
        "the second urgent email",
        || async { Ok((to_m(&smtp).len() >= 2).then_some(())) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    append(&log, &[ufw(now + 2000, "45.33.32.1", "198.51.100.5", 1433)]);
    eventually(
        Duration::from_secs(30),
        "the third wave to be held",
        || async {
            let m = reqwest::get(format!("{}/metrics", site.url))
                .await?
                .text()
                .await?;
            Ok(m.lines()
                .any(|l| {
                    l.starts_with("watchhouse_notifications_held_total ") && !l.ends_with(" 0")
                })
                .then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let urgent = to_m(&smtp);
    assert_eq!(
        urgent.len(),
        2,
        "at most two urgent messages an hour: {:?}",
        urgent.iter().map(|m| &m.1).collect::<Vec<_>>()
    );
    assert!(
        !messages(&smtp)
            .iter()
            .any(|m| m.0.contains("v@member.example")),
        "the viewer asked for no urgent email"
    );
    // Webhooks: signed, and under the same limit.
    let got = hooks.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    let mut ids = Vec::new();
    for (sig, body) in &got {
        assert!(verify(&secret, sig, body), "bad signature {sig}");
        assert!(!verify("wrong", sig, body));
        let v: Value = serde_json::from_str(body)?;
        for a in v["alerts"].as_array().unwrap() {
            assert_eq!(a["kind"], "exposed_service");
            assert!(a["what_to_do"].as_array().is_some_and(|s| !s.is_empty()));
            ids.push(a["id"].as_i64().unwrap());
        }
    }
    assert_eq!(ids.len(), 4, "waves 1 and 2");

    // The digest (hour 0 means any hour): every alert of the day, to both, once.
    hub1.interrupt(Duration::from_secs(10))?;
    let _hub2 = hub(&site, smtp_port, 0)?;
    wait_up(&site).await?;
    let digests = eventually(Duration::from_secs(30), "the digests", || async {
        let d: Vec<_> = messages(&smtp)
            .into_iter()
            .filter(|m| m.1.contains("Daily summary"))
            .collect();
        Ok((d.len() >= 2).then_some(d))
    })
    .await?;
    for who in ["m@member.example", "v@member.example"] {
        let d: Vec<_> = digests.iter().filter(|m| m.0.contains(who)).collect();
        assert_eq!(d.len(), 1, "{who}");
        assert_eq!(d[0].1, "[Watchhouse] Daily summary: 5 new alerts", "{who}");
    }
    assert!(
        !digests.iter().any(|m| m.0.contains("a@t.example")),
        "administrators watch the dashboards"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        messages(&smtp)
            .iter()
            .filter(|m| m.1.contains("Daily summary"))
            .count(),
        2,
        "once a day"
    );
    assert_eq!(
        to_m(&smtp)
            .iter()
            .filter(|m| !m.1.contains("Daily") && !m.1.contains("Weekly"))
            .count(),
        2,
        "the restart repeated nothing"
    );
    Ok(())
}
