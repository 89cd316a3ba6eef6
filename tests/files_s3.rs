//! The hub's files on S3-compatible storage (a real moto server on loopback): a feed's last good
//! copy lands in the bucket, and a restarted hub whose feed source is down matches from it.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, free_port, python_with, spawn, Site};

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_copies_live_in_s3_and_survive_a_restart() -> anyhow::Result<()> {
    // The S3-compatible server and a bucket.
    let py = python_with("moto.server", "moto[server]");
    let s3_port = free_port();
    let _moto = Child(
        Command::new(&py)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &s3_port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let endpoint = format!("http://127.0.0.1:{s3_port}");
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), "moto", || async {
        Ok(http
            .put(format!("{endpoint}/watchhouse"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success()))
    })
    .await?;
    // A feed served over loopback HTTP, which can be switched off.
    let up = Arc::new(Mutex::new(true));
    let u = up.clone();
    let app = axum::Router::new().route(
        "/list.netset",
        axum::routing::get(move || {
            let u = u.clone();
            async move {
                if *u.lock().unwrap() {
                    (
                        axum::http::StatusCode::OK,
                        "# list\n45.33.32.150\n45.33.32.151\n",
                    )
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let feed_url = format!("http://{}/list.netset", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });

    let site = Site::new()?;
    let feed_arg = format!("remote={feed_url}");
    let envs = [
        ("WATCHHOUSE__HUB__FILES", "s3://watchhouse/hub-1"),
        ("WATCHHOUSE__HUB__S3_ENDPOINT", endpoint.as_str()),
        ("WATCHHOUSE__HUB__S3_REGION", "us-east-1"),
        ("WATCHHOUSE__HUB__S3_ACCESS_KEY", "test"),
        ("WATCHHOUSE__HUB__S3_SECRET_KEY", "test"),
    ];
    let mut hub = site.start_hub(&["--feed", &feed_arg], &envs).await?;
    let admin = site.admin().await?;
    let (_, j) = admin.get_json("/api/v1/intel/check/45.33.32.151").await?;
    assert_eq!(j["listed"], true, "{j}");
    // The copy is in the bucket, not on the local disk.
    let files = watchhouse_files::Files::open(
        "s3://watchhouse/hub-1",
        &watchhouse_files::S3Options {
            endpoint: endpoint.clone(),
            region: "us-east-1".into(),
            access_key: "test".into(),
            secret_key: "test".into(),
        },
    )?;
    let keys = files.list("feeds").await?;
    assert!(
        keys.iter()
            .any(|k| k.starts_with("feeds/remote-") && k.ends_with(".body")),
        "{keys:?}"
    );
    assert!(
        !std::path::Path::new(&site.data).join("files").exists(),
        "nothing on the local disk"
    );
    // Source down, hub restarted: the copy in S3 still lists the addresses.
    hub.interrupt(Duration::from_secs(10))?;
    *up.lock().unwrap() = false;
    let _hub = spawn(
        site.dir.path(),
        "hub2",
        &[
            "hub",
            "--data-dir",
            &site.data,
            "--listen",
            &site.addr,
            "--feed",
            &feed_arg,
        ],
        &envs,
    )?;
    common::wait_healthy(&site.url).await?;
    let admin = site.admin().await?;
    let (_, j) = admin.get_json("/api/v1/intel/check/45.33.32.151").await?;
    assert_eq!(j["listed"], true, "from the copy in S3: {j}");
    let (_, f) = admin.get_json("/api/v1/intel/feeds").await?;
    assert_eq!(
        f["feeds"][0]["status"], "failed",
        "and the feed says its source is down: {f}"
    );
    Ok(())
}
