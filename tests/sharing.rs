//! Intelligence in and out, black-box against the real binary:
//!
//! - feeds fetched over HTTP from a loopback server with conditional requests; an update changes
//!   matching without a restart; an update that shrinks too far, has no usable entries, or fails
//!   is held back and the last good version stays in use;
//! - TLP:RED never leaves through TAXII, the STIX and MISP exports or any blocklist format;
//! - the TAXII 2.1 server's protocol: pagination, filters, manifest, versions, adding objects
//!   and reading their status, media types and errors.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, run, spawn, Client, Site, SITE_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A loopback HTTP server for feed files: per path a body and an ETag; records each request's
/// `If-None-Match`; answers 304 when it matches, 500 when the body is `None`.
/// What the server says as Last-Modified for files served that way.
const LAST_MODIFIED: &str = "Wed, 18 Nov 2026 10:00:00 GMT";

/// Path → `Some((body, etag))`, or `None` to answer 500.
type Files = HashMap<String, Option<(Vec<u8>, String)>>;
/// (path, If-None-Match sent, status answered).
type Seen = Vec<(String, Option<String>, u16)>;

#[derive(Clone, Default)]
struct FeedServer {
    files: Arc<Mutex<Files>>,
    seen: Arc<Mutex<Seen>>,
}

impl FeedServer {
    async fn start(&self) -> anyhow::Result<String> {
        let me = self.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let me = me.clone();
            async move {
                let path = req.uri().path().to_owned();
                let inm = req
                    .headers()
                    .get("if-none-match")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let ims = req
                    .headers()
                    .get("if-modified-since")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let file = me.files.lock().unwrap().get(&path).cloned();
                // A validator starting `"lm:` is served as Last-Modified instead of an ETag.
                let (status, body, etag) = match file {
                    None => (404, Vec::new(), None),
                    Some(None) => (500, b"broken".to_vec(), None),
                    Some(Some((_, etag))) if inm.as_deref() == Some(etag.as_str()) => {
                        (304, Vec::new(), Some(etag))
                    }
                    Some(Some((_, etag)))
                        if etag.starts_with("\"lm:") && ims.as_deref() == Some(LAST_MODIFIED) =>
                    {
                        (304, Vec::new(), Some(etag))
                    }
                    Some(Some((b, etag))) => (200, b, Some(etag)),
                };
                me.seen.lock().unwrap().push((path, inm.or(ims), status));
                let mut r = axum::response::Response::new(axum::body::Body::from(body));
                *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                match etag {
                    Some(e) if e.starts_with("\"lm:") => {
                        r.headers_mut()
                            .insert("last-modified", LAST_MODIFIED.parse().unwrap());
                    }
                    Some(e) => {
                        r.headers_mut().insert("etag", e.parse().unwrap());
                    }
                    None => {}
                }
                r
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", l.local_addr()?);
        tokio::spawn(async move { axum::serve(l, app).await });
        Ok(url)
    }

    fn put(&self, path: &str, body: &[u8], etag: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(path.into(), Some((body.to_vec(), format!("\"{etag}\""))));
    }

    fn break_it(&self, path: &str) {
        self.files.lock().unwrap().insert(path.into(), None);
    }

    fn conditional_hits(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, inm, s)| p == path && inm.is_some() && *s == 304)
            .count()
    }
}

async fn listed(admin: &Client, v: &str) -> anyhow::Result<Value> {
    let (s, j) = admin.get_json(&format!("/api/v1/intel/check/{v}")).await?;
    anyhow::ensure!(s == StatusCode::OK, "check {v}: {s} {j}");
    Ok(j)
}

async fn feed_view(admin: &Client, name: &str) -> anyhow::Result<Value> {
    let (_, v) = admin.get_json("/api/v1/intel/feeds").await?;
    Ok(v["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap_or(Value::Null))
}

fn start_hub_with_config(site: &Site, config: &str) -> anyhow::Result<common::Proc> {
    let path = site.path("watchhouse.toml");
    std::fs::write(&path, config)?;
    spawn(
        site.dir.path(),
        "hub",
        &["hub", "--data-dir", &site.data, "--listen", &site.addr],
        &[("WATCHHOUSE_CONFIG", path.as_str())],
    )
}

async fn wait_up(site: &Site) -> anyhow::Result<()> {
    common::wait_healthy(&site.url).await
}

const LEVEL1: &[u8] = include_bytes!("../crates/intel/tests/fixtures/firehol_level1.netset");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_updates_apply_without_restart_and_bad_updates_are_held() -> anyhow::Result<()> {
    let server = FeedServer::default();
    server.put("/level1.netset", LEVEL1, "v1");
    let feodo = "# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\"2023-06-01 10:00:00\",\"45.33.32.157\",\"443\",\"online\",\"2023-06-20\",\"QakBot\"\n";
    server.put("/feodo.csv", feodo.as_bytes(), "lm:f1");
    let base = server.start().await?;
    let site = Site::new()?;
    let mut hub = start_hub_with_config(
        &site,
        &format!(
            "[hub]\nfeed_check_secs = 1\n\
             [[hub.feeds]]\nname = \"level1\"\nurl = \"{base}/level1.netset\"\nrefresh_secs = 1\nmax_shrink_pct = 50\n\
             [[hub.feeds]]\nname = \"feodo\"\nurl = \"{base}/feodo.csv\"\nrefresh_secs = 1\nconfidence = 90\n"
        ),
    )?;
    wait_up(&site).await?;
    let admin = site.admin().await?;

    // Both feeds load, with their metadata; a listed address names feed, category and confidence.
    let j = listed(&admin, "1.10.16.7").await?;
    assert_eq!(j["listed"], true, "{j}");
    assert_eq!(j["labels"][0]["feed"], "level1");
    assert_eq!(
        j["labels"][0]["category"], "attacks",
        "category from the FireHOL header"
    );
    let j = listed(&admin, "45.33.32.157").await?;
    assert_eq!(j["labels"][0]["feed"], "feodo");
    assert_eq!(j["labels"][0]["category"], "botnet_c2");
    assert_eq!(j["labels"][0]["confidence"], 90);
    assert_eq!(listed(&admin, "45.33.32.156").await?["listed"], false);
    // Documentation ranges are bogons, so level1 (which includes fullbogons) lists them too.
    assert_eq!(
        listed(&admin, "203.0.113.9").await?["labels"][0]["feed"],
        "level1"
    );
    let v = feed_view(&admin, "level1").await?;
    assert_eq!(v["entries"], 6801, "{v}");
    assert_eq!(v["status"], "ok");

    // A feed added through the API is fetched and matched without a restart, and removed again.
    server.put("/extra.netset", b"45.33.32.158\n", "e1");
    let (s, v) = admin
        .post_json("/api/v1/intel/feeds", &json!({"name": "extra", "url": format!("{base}/extra.netset"), "refresh_secs": 1, "category": "scanners"}))
        .await?;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let j = eventually(Duration::from_secs(20), "the added feed", || async {
        let j = listed(&admin, "45.33.32.158").await?;
        Ok((j["listed"] == true).then_some(j))
    })
    .await?;
    assert_eq!(
        (&j["labels"][0]["feed"], &j["labels"][0]["category"]),
        (&json!("extra"), &json!("scanners"))
    );
    assert_eq!(feed_view(&admin, "extra").await?["from_ui"], true);
    let (s, _) = admin
        .post_json(
            "/api/v1/intel/feeds",
            &json!({"name": "extra", "url": format!("{base}/other")}),
        )
        .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "names are unique");
    assert_eq!(
        admin.delete("/api/v1/intel/feeds/level1").await?.status(),
        StatusCode::CONFLICT,
        "configured feeds stay"
    );
    assert_eq!(
        admin.delete("/api/v1/intel/feeds/extra").await?.status(),
        StatusCode::NO_CONTENT
    );
    eventually(
        Duration::from_secs(20),
        "the removed feed to stop matching",
        || async { Ok((listed(&admin, "45.33.32.158").await?["listed"] == false).then_some(())) },
    )
    .await?;

    // Unchanged feeds are asked for with If-None-Match (level1 has an ETag) or
    // If-Modified-Since (feodo has only Last-Modified) and answered 304.
    eventually(Duration::from_secs(20), "conditional requests", || async {
        Ok((server.conditional_hits("/level1.netset") >= 2
            && server.conditional_hits("/feodo.csv") >= 2)
            .then_some(()))
    })
    .await?;

    // An update is applied without a restart.
    let mut updated = LEVEL1.to_vec();
    updated.extend_from_slice(b"45.33.32.156\n");
    server.put("/level1.netset", &updated, "v2");
    eventually(Duration::from_secs(20), "the update", || async {
        Ok((listed(&admin, "45.33.32.156").await?["listed"] == true).then_some(()))
    })
    .await?;

    // An update that shrinks by more than 50% is held back: the old entries stay in use.
    server.put(
        "/level1.netset",
        b"# tiny\n198.18.0.1\n45.33.32.156\n",
        "v3",
    );
    let v = eventually(
        Duration::from_secs(20),
        "the shrunken update to be held",
        || async {
            let v = feed_view(&admin, "level1").await?;
            Ok((v["status"] == "held").then_some(v))
        },
    )
    .await?;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("shrank from 6802 to 2"),
        "{v}"
    );
    assert_eq!(
        listed(&admin, "1.10.16.7").await?["listed"],
        true,
        "last good version in use"
    );

    // A version with no usable entries is held back too; a failing server keeps the last good.
    server.put(
        "/level1.netset",
        b"<html>maintenance</html>\nnot a list\n",
        "v4",
    );
    eventually(
        Duration::from_secs(20),
        "the garbage update to be held",
        || async {
            let v = feed_view(&admin, "level1").await?;
            Ok(v["message"]
                .as_str()
                .unwrap_or("")
                .contains("no usable entries")
                .then_some(()))
        },
    )
    .await?;
    server.break_it("/feodo.csv");
    eventually(Duration::from_secs(20), "the failure to show", || async {
        let v = feed_view(&admin, "feodo").await?;
        Ok((v["status"] == "failed").then_some(()))
    })
    .await?;
    assert_eq!(listed(&admin, "45.33.32.157").await?["listed"], true);
    assert_eq!(listed(&admin, "1.10.16.7").await?["listed"], true);
    let metrics = reqwest::get(format!("{}/metrics", site.url))
        .await?
        .text()
        .await?;
    let failures: u64 = metrics
        .lines()
        .find(|l| l.starts_with("watchhouse_intel_load_failures_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    assert!(failures >= 3, "{failures}");

    // A download bigger than the feed's max_bytes is refused, not buffered without end.
    server.put("/huge.netset", &b"198.51.100.1\n".repeat(200_000), "h1");
    hub.interrupt(Duration::from_secs(10))?;
    let mut hub = start_hub_with_config(
        &site,
        &format!(
            "[hub]\nfeed_check_secs = 1\n[[hub.feeds]]\nname = \"level1\"\nurl = \"{base}/level1.netset\"\n\
             [[hub.feeds]]\nname = \"huge\"\nurl = \"{base}/huge.netset\"\nmax_bytes = 1000000\n"
        ),
    )?;
    wait_up(&site).await?;
    let admin = site.admin().await?;
    let v = feed_view(&admin, "huge").await?;
    assert_eq!(v["status"], "failed", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("larger than"),
        "{v}"
    );

    // After a restart with the feed server broken, the saved copy is used.
    hub.interrupt(Duration::from_secs(10))?;
    server.break_it("/level1.netset");
    let _hub = start_hub_with_config(
        &site,
        &format!(
            "[hub]\nfeed_check_secs = 1\n[[hub.feeds]]\nname = \"level1\"\nurl = \"{base}/level1.netset\"\n"
        ),
    )?;
    wait_up(&site).await?;
    let admin = site.admin().await?;
    assert_eq!(
        listed(&admin, "45.33.32.156").await?["listed"],
        true,
        "cached version after restart"
    );
    Ok(())
}

/// Every real feed file in `../shared/data/feeds/`, served over loopback HTTP (the 1M-entry merged
/// list gzipped, as published), loads completely: each FireHOL file yields the number of entries
/// its header declares, with its category and maintainer; the merged list all 1,012,154.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_feed_loads_over_http() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/feeds");
    let server = FeedServer::default();
    let mut config = String::from("[hub]\nfeed_check_secs = 1\n");
    let mut expected = Vec::new();
    let base_placeholder = "BASE";
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path)?;
        let name = file.split('.').next().unwrap().replace('-', "_");
        let declared = if file.ends_with(".gz") {
            1_012_154
        } else {
            watchhouse_intel::formats::firehol_header(&String::from_utf8_lossy(&body))
                .entries
                .expect("FireHOL header with Entries")
        };
        server.put(&format!("/{file}"), &body, "1");
        let blocklist = name == "firehol_level1" || name == "spamhaus_drop";
        config.push_str(&format!(
            "[[hub.feeds]]\nname = \"{name}\"\nurl = \"{base_placeholder}/{file}\"\nexpiry_days = 0\nblocklist = {blocklist}\n"
        ));
        expected.push((name, declared));
    }
    assert!(expected.len() >= 14, "{expected:?}");
    let base = server.start().await?;
    let site = Site::new()?;
    let _hub = start_hub_with_config(&site, &config.replace(base_placeholder, &base))?;
    wait_up(&site).await?;
    let admin = site.admin().await?;
    let (_, v) = admin.get_json("/api/v1/intel/feeds").await?;
    for (name, declared) in &expected {
        let f = v["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name.as_str())
            .unwrap();
        assert_eq!(f["status"], "ok", "{f}");
        assert_eq!(f["entries"], *declared, "{name}: {f}");
        assert_eq!(f["skipped"], 0, "{name}: {f}");
        if *declared != 1_012_154 {
            assert_ne!(f["provenance"].as_str().unwrap(), "", "{name}");
            assert!(
                !f["provenance"].as_str().unwrap().starts_with("http"),
                "maintainer from the header: {f}"
            );
        }
    }
    let tor = v["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tor_exits")
        .unwrap();
    assert_eq!(tor["category"], "anonymizers");
    // The member's blocklist from two real, overlapping lists (DROP is inside level1) is
    // accepted by nftables itself: nested blocks are folded, nothing overlaps.
    let nft = admin
        .get("/api/v1/members/1/blocklist/nft")
        .await?
        .text()
        .await?;
    assert!(nft.matches(", ").count() > 3000, "thousands of entries");
    nft_check(&site, &nft)?;
    Ok(())
}

/// `nft --check` on a ruleset (nftables from Debian; `.ci/run` installs it).
fn nft_check(site: &Site, ruleset: &str) -> anyhow::Result<()> {
    let path = site.path("blocklist.nft");
    std::fs::write(&path, ruleset)?;
    let out = std::process::Command::new("nft")
        .args(["--check", "-f", &path])
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run nft ({e}): install nftables (apt-get install nftables)")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "nft rejected the blocklist: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A bundle with one indicator at each TLP level (documentation addresses).
fn tlp_bundle() -> String {
    let markings = [
        (
            "192.0.2.10",
            "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        ), // RED
        (
            "192.0.2.11",
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        ), // AMBER
        (
            "192.0.2.12",
            "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        ), // GREEN
        (
            "192.0.2.13",
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        ), // CLEAR
        (
            "192.0.2.14",
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        ), // AMBER+STRICT
    ];
    let objects: Vec<Value> = markings
        .iter()
        .enumerate()
        .map(|(i, (ip, m))| {
            json!({
                "type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--00000000-0000-4000-8000-00000000000{i}"),
                "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
                "pattern": format!("[ipv4-addr:value = '{ip}']"), "pattern_type": "stix",
                "valid_from": "2026-11-01T00:00:00.000Z", "object_marking_refs": [m]
            })
        })
        .collect();
    json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": objects}).to_string()
}

async fn taxii_get(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    pw: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let r = http
        .get(url)
        .basic_auth(user, Some(pw))
        .header("accept", "application/taxii+json;version=2.1")
        .send()
        .await?;
    let s = r.status();
    if s.is_success() {
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/taxii+json;version=2.1"
        );
    }
    Ok((s, r.json().await.unwrap_or(Value::Null)))
}

/// Every object of the indicators collection, page by page (`limit` and `next`).
async fn all_objects(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    pw: &str,
    limit: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("{base}/taxii2/api/collections/6c1f3b8e-2a4d-4f6b-9e1d-3a5c7b9d0e21/objects/?limit={limit}");
        if let Some(n) = &next {
            url.push_str(&format!("&next={n}"));
        }
        let (s, v) = taxii_get(http, &url, user, pw).await?;
        anyhow::ensure!(s == StatusCode::OK, "{url}: {s} {v}");
        out.extend(v["objects"].as_array().cloned().unwrap_or_default());
        if v["more"] != true {
            return Ok(out);
        }
        next = v["next"].as_str().map(str::to_owned);
    }
    anyhow::bail!("pagination did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlp_red_never_leaves_and_taxii_speaks_the_protocol() -> anyhow::Result<()> {
    let site = Site::new()?;
    let bundle_path = site.path("shared.json");
    std::fs::write(&bundle_path, tlp_bundle())?;
    let pw = run(
        &[
            "admin",
            "--data-dir",
            &site.data,
            "partner",
            "add",
            "--email",
            "p@cert.example",
            "--name",
            "CERT",
            "--max-tlp",
            "amber",
        ],
        None,
    )?;
    let partner_pw = pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    let green_pw = run(
        &[
            "admin",
            "--data-dir",
            &site.data,
            "partner",
            "add",
            "--email",
            "g@isac.example",
            "--name",
            "ISAC",
        ],
        None,
    )?;
    let green_pw = green_pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    let token = run(
        &[
            "admin",
            "--data-dir",
            &site.data,
            "api-token",
            "create",
            "--email",
            "g@isac.example",
        ],
        None,
    )?;
    let token = token
        .split(": ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let _hub = start_hub_with_config(
        &site,
        &format!(
            "[hub]\nfeed_check_secs = 1\n[[hub.feeds]]\nname = \"partnerfeed\"\nurl = \"{bundle_path}\"\nshare = true\nblocklist = true\nexpiry_days = 0\n"
        ),
    )?;
    wait_up(&site).await?;
    let admin = site.admin().await?;
    let (s, _) = admin
        .post_json(
            "/api/v1/intel/indicators",
            &json!({"value": "203.0.113.250", "tlp": "red", "category": "botnet_c2"}),
        )
        .await?;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = admin
        .post_json(
            "/api/v1/intel/indicators",
            &json!({"value": "203.0.113.251", "tlp": "green"}),
        )
        .await?;
    assert_eq!(s, StatusCode::CREATED);
    // RED intelligence is still used for detection.
    eventually(
        Duration::from_secs(20),
        "analyst indicators in the matcher",
        || async { Ok((listed(&admin, "203.0.113.250").await?["listed"] == true).then_some(())) },
    )
    .await?;
    assert_eq!(
        listed(&admin, "192.0.2.10").await?["labels"][0]["tlp"],
        "red"
    );

    let red = ["192.0.2.10", "203.0.113.250"];
    let http = reqwest::Client::new();
    let dump = |objs: &[Value]| serde_json::to_string(objs).unwrap();
    // Admin (inside the organisation): up to AMBER+STRICT, never RED.
    let objs = all_objects(&http, &site.url, "a@t.example", SITE_PASSWORD, 2).await?;
    let text = dump(&objs);
    for ip in [
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
        "192.0.2.14",
        "203.0.113.251",
    ] {
        assert!(text.contains(ip), "admin sees {ip}");
    }
    // An AMBER partner: AMBER and below.
    let objs = all_objects(&http, &site.url, "p@cert.example", &partner_pw, 3).await?;
    let text = dump(&objs);
    assert!(
        text.contains("192.0.2.11") && !text.contains("192.0.2.14"),
        "amber partner"
    );
    // A GREEN partner with a bearer token: GREEN and CLEAR only.
    let r = http
        .get(format!(
            "{}/taxii2/api/collections/6c1f3b8e-2a4d-4f6b-9e1d-3a5c7b9d0e21/objects/",
            site.url
        ))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await?;
    assert!(
        text.contains("192.0.2.12")
            && text.contains("192.0.2.13")
            && text.contains("203.0.113.251")
    );
    assert!(
        !text.contains("192.0.2.11") && !text.contains("192.0.2.14"),
        "green partner gets no amber"
    );
    // Nothing RED, for anyone, anywhere: TAXII, bundle, MISP feed, every blocklist format.
    let mut outputs = vec![
        text,
        dump(&all_objects(&http, &site.url, "a@t.example", SITE_PASSWORD, 1000).await?),
    ];
    outputs.push(admin.get("/api/v1/intel/export/stix").await?.text().await?);
    let manifest: Value = admin
        .get("/api/v1/intel/export/misp/manifest.json")
        .await?
        .json()
        .await?;
    for uuid in manifest.as_object().unwrap().keys() {
        outputs.push(
            admin
                .get(&format!("/api/v1/intel/export/misp/{uuid}.json"))
                .await?
                .text()
                .await?,
        );
    }
    outputs.push(
        admin
            .get("/api/v1/intel/export/misp/hashes.csv")
            .await?
            .text()
            .await?,
    );
    for f in [
        "txt",
        "nft",
        "ipset",
        "pf",
        "mikrotik",
        "fortigate",
        "panos",
    ] {
        let r = admin
            .get(&format!("/api/v1/members/1/blocklist/{f}"))
            .await?;
        assert_eq!(r.status(), StatusCode::OK, "{f}");
        let body = r.text().await?;
        assert!(
            body.contains("192.0.2.11") && body.contains("203.0.113.251"),
            "{f}: {body}"
        );
        assert!(
            !body.contains("192.0.2.14"),
            "{f}: AMBER+STRICT stays in the organisation"
        );
        outputs.push(body);
    }
    for o in &outputs {
        for ip in red {
            assert!(!o.contains(ip), "TLP:RED {ip} left: {o}");
        }
    }
    // A member excludes an entry from its own blocklist.
    let (s, _) = admin
        .post_json(
            "/api/v1/members/1/blocklist-exclusions",
            &json!({"cidr": "192.0.2.12", "note": "our partner"}),
        )
        .await?;
    assert_eq!(s, StatusCode::OK);
    let body = admin
        .get("/api/v1/members/1/blocklist/txt")
        .await?
        .text()
        .await?;
    assert!(
        !body.contains("192.0.2.12") && body.contains("192.0.2.13"),
        "{body}"
    );

    // --- TAXII protocol ---------------------------------------------------------------
    let (s, d) = taxii_get(
        &http,
        &format!("{}/taxii2/", site.url),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(s, StatusCode::OK);
    let root = d["api_roots"][0].as_str().unwrap().to_owned();
    assert_eq!(root, format!("{}/taxii2/api/", site.url));
    let (_, r) = taxii_get(&http, &root, "g@isac.example", &green_pw).await?;
    assert_eq!(r["versions"][0], "application/taxii+json;version=2.1");
    let (_, cols) = taxii_get(
        &http,
        &format!("{root}collections/"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(cols["collections"].as_array().unwrap().len(), 2);
    let col = format!("{root}collections/6c1f3b8e-2a4d-4f6b-9e1d-3a5c7b9d0e21/");
    // Filters.
    let (_, v) = taxii_get(
        &http,
        &format!("{col}objects/?match[type]=indicator"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    let inds = v["objects"].as_array().unwrap();
    assert!(
        inds.iter().all(|o| o["type"] == "indicator") && inds.len() == 3,
        "{v}"
    );
    let id = inds[0]["id"].as_str().unwrap().to_owned();
    let (_, one) = taxii_get(
        &http,
        &format!("{col}objects/?match[id]={id}"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(one["objects"].as_array().unwrap().len(), 1);
    let (s, one) = taxii_get(
        &http,
        &format!("{col}objects/{id}/"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["objects"][0]["id"], id.as_str());
    let (_, vers) = taxii_get(
        &http,
        &format!("{col}objects/{id}/versions/"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(vers["versions"][0], one["objects"][0]["modified"]);
    let (_, man) = taxii_get(
        &http,
        &format!("{col}manifest/?limit=2"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(man["objects"].as_array().unwrap().len(), 2);
    assert_eq!(man["more"], true);
    assert_eq!(
        man["objects"][0]["media_type"],
        "application/stix+json;version=2.1"
    );
    let (_, none) = taxii_get(
        &http,
        &format!("{col}objects/?added_after=2099-01-01T00:00:00Z"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(none["more"], false);
    assert!(none.get("objects").is_none());
    let (_, spec) = taxii_get(
        &http,
        &format!("{col}objects/?match[spec_version]=2.0"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert!(spec.get("objects").is_none());
    // Errors are TAXII error resources.
    let (s, e) = taxii_get(
        &http,
        &format!("{root}collections/nope/objects/"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["http_status"], "404");
    let (s, _) = taxii_get(
        &http,
        &format!("{col}objects/?added_after=yesterday"),
        "g@isac.example",
        &green_pw,
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let r = http
        .get(&col)
        .basic_auth("g@isac.example", Some(&green_pw))
        .header("accept", "text/html")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    // Adding objects, then polling the status; only the adder may read it.
    let sub = format!("{root}collections/b7e4d2a1-5c3f-4e8b-a6d9-0f1e2c3b4a59/objects/");
    let env = json!({"objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--11111111-2222-4333-8444-555555555555",
         "created": "2026-11-20T00:00:00.000Z", "modified": "2026-11-20T00:00:00.000Z",
         "pattern": "[ipv4-addr:value = '192.0.2.99']", "pattern_type": "stix", "valid_from": "2026-11-20T00:00:00.000Z"},
        {"type": "indicator", "id": "not-an-id"}
    ]});
    let r = http
        .post(&sub)
        .basic_auth("g@isac.example", Some(&green_pw))
        .json(&env)
        .send()
        .await?;
    assert_eq!(
        r.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "needs the TAXII media type"
    );
    let r = http
        .post(&sub)
        .basic_auth("g@isac.example", Some(&green_pw))
        .header("content-type", "application/taxii+json;version=2.1")
        .body(env.to_string())
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let st: Value = r.json().await?;
    assert_eq!(
        (st["success_count"].as_u64(), st["failure_count"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );
    let status_url = format!("{root}status/{}/", st["id"].as_str().unwrap());
    let (s, again) = taxii_get(&http, &status_url, "g@isac.example", &green_pw).await?;
    assert_eq!((s, &again["status"]), (StatusCode::OK, &json!("complete")));
    let (s, _) = taxii_get(&http, &status_url, "p@cert.example", &partner_pw).await?;
    assert_eq!(s, StatusCode::NOT_FOUND, "another partner's status");
    let (s, _) = taxii_get(&http, &sub, "g@isac.example", &green_pw).await?;
    assert_eq!(s, StatusCode::FORBIDDEN, "submissions are write-only");
    // A partner's indicator is matched against members' traffic.
    eventually(
        Duration::from_secs(20),
        "the partner's indicator in the matcher",
        || async {
            let j = listed(&admin, "192.0.2.99").await?;
            Ok((j["labels"][0]["feed"] == "partners").then_some(()))
        },
    )
    .await?;
    Ok(())
}
