//! HTTPS end to end: the hub serves TLS with a certificate from a private CA; a collector that
//! trusts that CA enrols and ships over HTTPS; one that does not trust it refuses to talk.

mod common;

use std::time::Duration;

use common::{eventually, free_port, spawn, Client, Site, SITE_PASSWORD};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_ships_over_https_and_refuses_an_untrusted_hub() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A private CA and a server certificate for the loopback address.
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Watchhouse test CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?
        .signed_by(&key, &issuer)?;
    let (ca_pem, cert_pem, key_pem) = (
        dir.path().join("ca.pem"),
        dir.path().join("hub.pem"),
        dir.path().join("hub.key"),
    );
    std::fs::write(&ca_pem, ca_cert.pem())?;
    std::fs::write(&cert_pem, server.pem())?;
    std::fs::write(&key_pem, key.serialize_pem())?;

    // Force, member, administrator and token through the real admin CLI; the hub is started
    // here because it serves HTTPS.
    let site = Site::new()?;
    let d = site.data.as_str();
    let token = site.token.clone();

    let port = free_port();
    let _hub = spawn(
        dir.path(),
        "hub",
        &[
            "hub",
            "--data-dir",
            d,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[
            ("WATCHHOUSE__HUB__TLS_CERT", cert_pem.to_str().unwrap()),
            ("WATCHHOUSE__HUB__TLS_KEY", key_pem.to_str().unwrap()),
        ],
    )?;
    let url = format!("https://127.0.0.1:{port}");
    let ca_cert_r = reqwest::Certificate::from_pem(&std::fs::read(&ca_pem)?)?;
    let https = reqwest::Client::builder()
        .add_root_certificate(ca_cert_r)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    eventually(Duration::from_secs(30), "the HTTPS hub", || {
        let (h, u) = (https.clone(), url.clone());
        async move {
            Ok(h.get(format!("{u}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success()))
        }
    })
    .await?;
    // Plain HTTP to the TLS port gets nowhere.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err());

    // A collector that does not trust the hub's CA refuses to enrol.
    let untrusting = std::process::Command::new(common::bin())
        .args([
            "collect",
            "--hub",
            &url,
            "--data-dir",
            dir.path().join("c0").to_str().unwrap(),
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
        ])
        .env("WATCHHOUSE_ENROL_TOKEN", &token)
        .output()?;
    assert!(!untrusting.status.success());
    let err = String::from_utf8_lossy(&untrusting.stderr);
    assert!(err.contains("cannot reach the hub"), "{err}");

    // One that trusts it enrols (the token is still unused) and ships over HTTPS.
    let log = dir.path().join("fw.log");
    let lines: String = (0..20)
        .map(|i| format!("Nov 21 06:00:{i:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.18.0.{i} DST=198.51.100.3 LEN=40 PROTO=TCP SPT=4000 DPT=22\n"))
        .collect();
    std::fs::write(&log, lines)?;
    let _collector = spawn(
        dir.path(),
        "collector",
        &[
            "collect",
            "--hub",
            &url,
            "--data-dir",
            dir.path().join("c1").to_str().unwrap(),
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--file",
            log.to_str().unwrap(),
        ],
        &[
            ("WATCHHOUSE_ENROL_TOKEN", &token),
            ("WATCHHOUSE__COLLECTOR__CA_CERT", ca_pem.to_str().unwrap()),
        ],
    )?;
    let mut admin = Client::new(&url);
    admin.http = https.clone();
    assert_eq!(
        admin.login("a@t.example", SITE_PASSWORD).await?,
        StatusCode::SEE_OTHER
    );
    eventually(Duration::from_secs(60), "20 events over HTTPS", || async {
        let (_, v) = admin.get_json("/api/v1/members/1/summary").await?;
        Ok((v["total_events"].as_u64() == Some(20)).then_some(()))
    })
    .await?;
    // Over HTTPS the session cookie is Secure.
    let form = https.get(format!("{url}/login")).send().await?;
    let set = form.headers()["set-cookie"].to_str()?.to_owned();
    assert!(set.contains("; Secure"), "{set}");
    Ok(())
}
