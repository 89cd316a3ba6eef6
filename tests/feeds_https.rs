//! Intelligence between hubs over HTTPS on a private PKI: hub B polls hub A's TAXII collection
//! and MISP feed with a partner's bearer token. Without `feed_ca_file` B refuses A's certificate
//! (and says so on the feed's status); with it, A's indicator reaches B's matcher.

mod common;

use std::time::Duration;

use common::{eventually, free_port, run, spawn, Site};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;

fn hub_b(b: &Site, a_url: &str, token: &str, ca: Option<&str>) -> anyhow::Result<common::Proc> {
    let cfg = b.path("b.toml");
    std::fs::write(
        &cfg,
        format!(
            "[hub]\nfeed_check_secs = 1\nfeed_ca_file = \"{}\"\n\
             [[hub.feeds]]\nname = \"a_taxii\"\nurl = \"{a_url}/taxii2/api/collections/6c1f3b8e-2a4d-4f6b-9e1d-3a5c7b9d0e21/\"\nformat = \"taxii\"\nauthorization = \"Bearer {token}\"\nrefresh_secs = 1\n\
             [[hub.feeds]]\nname = \"a_misp\"\nurl = \"{a_url}/api/v1/intel/export/misp/\"\nformat = \"misp\"\nauthorization = \"Bearer {token}\"\nrefresh_secs = 1\n",
            ca.unwrap_or("")
        ),
    )?;
    spawn(
        b.dir.path(),
        "hub-b",
        &["hub", "--data-dir", &b.data, "--listen", &b.addr],
        &[("WATCHHOUSE_CONFIG", cfg.as_str())],
    )
}

async fn up(url: &str) -> anyhow::Result<()> {
    common::wait_healthy(url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_over_https_on_a_private_pki() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Partner CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &issuer)?;
    let ca_pem = dir.path().join("ca.pem");
    let (cert_pem, key_pem) = (dir.path().join("a.pem"), dir.path().join("a.key"));
    std::fs::write(&ca_pem, ca_cert.pem())?;
    std::fs::write(&cert_pem, cert.pem())?;
    std::fs::write(&key_pem, key.serialize_pem())?;

    // Hub A, on HTTPS, with a partner account for B and an analyst indicator to share.
    let a = Site::new()?;
    run(
        &[
            "admin",
            "--data-dir",
            &a.data,
            "partner",
            "add",
            "--email",
            "b@hub-b.example",
            "--name",
            "Hub B",
        ],
        None,
    )?;
    let tok = |email: &str| -> anyhow::Result<String> {
        let out = run(
            &[
                "admin",
                "--data-dir",
                &a.data,
                "api-token",
                "create",
                "--email",
                email,
            ],
            None,
        )?;
        Ok(out
            .split(": ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned())
    };
    let partner = tok("b@hub-b.example")?;
    let admin_tok = tok("a@t.example")?;
    let port = free_port();
    let _hub_a = spawn(
        dir.path(),
        "hub-a",
        &[
            "hub",
            "--data-dir",
            &a.data,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[
            ("WATCHHOUSE__HUB__TLS_CERT", cert_pem.to_str().unwrap()),
            ("WATCHHOUSE__HUB__TLS_KEY", key_pem.to_str().unwrap()),
        ],
    )?;
    let a_url = format!("https://127.0.0.1:{port}");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca_pem)?)?)
        .build()?;
    eventually(Duration::from_secs(30), "hub A", || {
        let (h, u) = (https.clone(), a_url.clone());
        async move {
            Ok(h.get(format!("{u}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success()))
        }
    })
    .await?;
    let r = https
        .post(format!("{a_url}/api/v1/intel/indicators"))
        .bearer_auth(&admin_tok)
        .json(&json!({"value": "203.0.113.99", "tlp": "green", "category": "botnet_c2"}))
        .send()
        .await?;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);

    // Hub B without the CA: the feeds fail, and say why.
    let b = Site::new()?;
    let mut hub_b1 = hub_b(&b, &a_url, &partner, None)?;
    up(&b.url).await?;
    let admin_b = b.admin().await?;
    let v = eventually(Duration::from_secs(30), "the TLS failure", || async {
        let (_, v) = admin_b.get_json("/api/v1/intel/feeds").await?;
        let f = v["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "a_taxii")
            .cloned();
        Ok(f.filter(|f| f["status"] == "failed"))
    })
    .await?;
    assert!(v["message"].as_str().unwrap().contains(&a_url), "{v}");
    hub_b1.interrupt(Duration::from_secs(10))?;

    // With the CA: both feeds work and the indicator is matched, with its category.
    let _hub_b2 = hub_b(&b, &a_url, &partner, Some(ca_pem.to_str().unwrap()))?;
    up(&b.url).await?;
    let admin_b = b.admin().await?;
    let j = eventually(Duration::from_secs(30), "A's indicator at B", || async {
        let (_, j) = admin_b.get_json("/api/v1/intel/check/203.0.113.99").await?;
        Ok((j["labels"].as_array().map(|l| l.len()).unwrap_or(0) == 2).then_some(j))
    })
    .await?;
    let feeds: Vec<&str> = j["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["feed"].as_str().unwrap())
        .collect();
    assert_eq!(feeds, vec!["a_taxii", "a_misp"]);
    assert_eq!(j["labels"][0]["category"], "botnet_c2");
    Ok(())
}
