//! The file-store conformance suite, run on the local filesystem and on a real S3-compatible
//! server (moto's server mode, installed from PyPI into target/ci-venv on first use).

use std::process::{Command, Stdio};
use std::time::Duration;

use watchhouse_files::{Files, S3Options};

async fn suite(f: &Files) {
    assert_eq!(f.get("feeds/none.body").await.unwrap(), None);
    f.put("feeds/level1.body", b"1.2.3.4\n".to_vec())
        .await
        .unwrap();
    f.put("feeds/level1.meta.json", b"{}".to_vec())
        .await
        .unwrap();
    f.put("evidence/2026/report-1.bin", vec![0u8, 255, 7])
        .await
        .unwrap();
    assert_eq!(
        f.get("feeds/level1.body").await.unwrap().unwrap(),
        b"1.2.3.4\n"
    );
    assert_eq!(
        f.get("evidence/2026/report-1.bin").await.unwrap().unwrap(),
        vec![0u8, 255, 7]
    );
    // Replacing is whole.
    f.put("feeds/level1.body", b"5.6.7.8\n9.9.9.9\n".to_vec())
        .await
        .unwrap();
    assert_eq!(
        f.get("feeds/level1.body").await.unwrap().unwrap(),
        b"5.6.7.8\n9.9.9.9\n"
    );
    assert_eq!(
        f.list("feeds").await.unwrap(),
        vec!["feeds/level1.body", "feeds/level1.meta.json"]
    );
    assert!(f.delete("feeds/level1.meta.json").await.unwrap());
    assert!(!f.delete("feeds/level1.meta.json").await.unwrap());
    assert_eq!(f.list("feeds").await.unwrap(), vec!["feeds/level1.body"]);
    // Hostile keys never reach the store.
    for bad in ["../escape", "feeds/../../etc/passwd", "/abs", "a//b"] {
        assert!(f.put(bad, vec![1]).await.is_err(), "{bad}");
        assert!(f.get(bad).await.is_err(), "{bad}");
    }
    // A 5 MB object round-trips.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    f.put("evidence/big.bin", big.clone()).await.unwrap();
    assert_eq!(f.get("evidence/big.bin").await.unwrap().unwrap(), big);
}

#[tokio::test]
async fn local_files_conform() {
    let dir = tempfile::tempdir().unwrap();
    let f = Files::open(
        &format!("file://{}", dir.path().join("files").display()),
        &S3Options::default(),
    )
    .unwrap();
    suite(&f).await;
    assert!(
        dir.path().join("files/feeds/level1.body").exists(),
        "plain files on disk"
    );
    assert!(Files::open("ftp://x", &S3Options::default()).is_err());
    assert!(Files::open("s3://", &S3Options::default()).is_err());
}

#[path = "../../../tests/common/python.rs"]
mod python;
use python::python_with;

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[tokio::test]
async fn s3_compatible_storage_conforms() {
    let py = python_with("moto.server", "moto[server]");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Child(
        Command::new(&py)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let bucket = format!("wh-{}", uuid::Uuid::new_v4().simple());
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = http.put(format!("{endpoint}/{bucket}")).send().await {
            up = r.status().is_success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(up, "moto server did not start or refused the bucket");
    let s3 = S3Options {
        endpoint,
        region: "us-east-1".into(),
        access_key: "test".into(),
        secret_key: "test".into(),
    };
    let f = Files::open(&format!("s3://{bucket}/hub-1"), &s3).unwrap();
    suite(&f).await;
}
