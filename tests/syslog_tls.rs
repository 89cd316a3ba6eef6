//! Syslog over TLS (RFC 5425) into the real collector, with client certificates required:
//! a sender holding a certificate from the member's CA gets its lines to the hub; a sender
//! without one is refused at the handshake and nothing of its arrives.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, free_port, Site};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;

fn ca(name: &str) -> anyhow::Result<(rcgen::Certificate, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key)?;
    Ok((cert, Issuer::new(p, key)))
}

async fn send(
    port: u16,
    server_ca: &rcgen::Certificate,
    client: Option<(&rcgen::Certificate, &KeyPair)>,
    lines: &[String],
) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(server_ca.der().to_vec()))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let b = rustls::ClientConfig::builder().with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key)) => b.with_client_auth_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?,
        )?,
        None => b.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    for l in lines {
        tls.write_all(format!("{} {l}", l.len()).as_bytes()).await?;
    }
    tls.flush().await?;
    tls.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_requires_the_members_client_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server_ca_cert, server_ca) = ca("collector CA")?;
    let (client_ca_cert, client_ca) = ca("member firewall CA")?;
    let server_key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["localhost".to_string()])?
        .signed_by(&server_key, &server_ca)?;
    let fw_key = KeyPair::generate()?;
    let fw = CertificateParams::new(vec!["firewall.member.example".to_string()])?
        .signed_by(&fw_key, &client_ca)?;
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    std::fs::write(p("collector.pem"), server.pem())?;
    std::fs::write(p("collector.key"), server_key.serialize_pem())?;
    std::fs::write(p("clients-ca.pem"), client_ca_cert.pem())?;

    let site = Site::new()?;
    let _hub = site.start_hub(&[], &[]).await?;
    let tls_port = free_port();
    let tls_listen = format!("[\"127.0.0.1:{tls_port}\"]");
    let (cert, key, cca) = (p("collector.pem"), p("collector.key"), p("clients-ca.pem"));
    let col = site.start_collector(
        &[],
        &[
            ("WATCHHOUSE__COLLECTOR__TLS_LISTEN", &tls_listen),
            ("WATCHHOUSE__COLLECTOR__TLS_CERT", &cert),
            ("WATCHHOUSE__COLLECTOR__TLS_KEY", &key),
            ("WATCHHOUSE__COLLECTOR__TLS_CLIENT_CA", &cca),
        ],
    )?;
    let lines: Vec<String> = (0..5)
        .map(|i| format!("<4>Nov 21 06:00:0{i} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.18.1.{i} DST=198.51.100.10 LEN=40 PROTO=TCP SPT=5555 DPT=22 SYN"))
        .collect();
    eventually(
        Duration::from_secs(30),
        "the collector's TLS listener",
        || {
            let col_log = col.log.clone();
            async move {
                Ok(std::fs::read_to_string(col_log)?
                    .contains("collector running")
                    .then_some(()))
            }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", col.log()))?;

    // Without a client certificate: refused.
    let refused = send(tls_port, &server_ca_cert, None, &lines).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // (The handshake may complete from the client's side before the server's refusal arrives;
    // either way nothing may reach the hub.)
    let _ = refused;
    // With the member firewall's certificate: delivered.
    send(tls_port, &server_ca_cert, Some((&fw, &fw_key)), &lines).await?;

    let mut admin = site.admin().await?;
    eventually(
        Duration::from_secs(30),
        "5 events over syslog/TLS",
        || async {
            let (_, v) = admin.get_json("/api/v1/members/1/summary").await?;
            Ok((v["total_events"].as_u64() == Some(5)).then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", col.log()))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, v) = admin.get_json("/api/v1/members/1/summary").await?;
    assert_eq!(
        v["total_events"], 5,
        "the uncertified sender's lines never arrived"
    );
    assert!(
        col.log().contains("syslog TLS handshake refused"),
        "the refusal is logged"
    );
    admin.session = None;
    Ok(())
}
