//! File and evidence storage for the hub, through the `object_store` crate: a directory on the
//! local disk by default (`file:///var/lib/watchhouse/files`), any S3-compatible service at
//! scale (`s3://bucket` with an endpoint).
//!
//! **Invariant: keys are ours, never a path from outside.** A key is checked before it reaches
//! the store: lower-case letters, digits, `-`, `_`, `.` and `/` between non-empty segments, no
//! `..`, at most 512 bytes — so a hostile name cannot escape the directory or the bucket.

use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The key is not one Watchhouse makes.
    #[error("bad file key `{0}`")]
    BadKey(String),
    /// The store's URL or options are wrong.
    #[error("file store: {0}")]
    Config(String),
    /// The store failed.
    #[error("file store: {0}")]
    Store(String),
}

/// Result of file operations.
pub type Result<T> = std::result::Result<T, FilesError>;

/// Where S3-compatible storage is and how to sign in.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `http(s)://host:port` of the service (empty: AWS).
    pub endpoint: String,
    /// Region (any name for most S3-compatible services).
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

/// A file store.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    url: String,
}

fn check(key: &str) -> Result<Path> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        });
    if !ok {
        return Err(FilesError::BadKey(key.chars().take(80).collect()));
    }
    Ok(Path::from(key))
}

impl Files {
    /// Opens `file:///dir` (created if missing) or `s3://bucket[/prefix]`.
    pub fn open(url: &str, s3: &S3Options) -> Result<Files> {
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .map_err(|e| FilesError::Config(format!("cannot create {dir}: {e}")))?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| FilesError::Config(e.to_string()))?,
            )
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or("");
            if bucket.is_empty() {
                return Err(FilesError::Config(format!("`{url}` names no bucket")));
            }
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(if s3.region.is_empty() {
                    "us-east-1"
                } else {
                    &s3.region
                })
                .with_access_key_id(&s3.access_key)
                .with_secret_access_key(&s3.secret_key);
            if !s3.endpoint.is_empty() {
                b = b
                    .with_endpoint(&s3.endpoint)
                    .with_allow_http(s3.endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            let store = b.build().map_err(|e| FilesError::Config(e.to_string()))?;
            match rest.split_once('/').map(|(_, p)| p.trim_matches('/')) {
                Some(prefix) if !prefix.is_empty() => {
                    Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
                }
                _ => Arc::new(store),
            }
        } else {
            return Err(FilesError::Config(format!(
                "`{url}`: use file:///path/to/dir or s3://bucket"
            )));
        };
        Ok(Files {
            store,
            url: url.to_owned(),
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stores `bytes` under `key`, replacing what was there (atomically on both backends).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let p = check(key)?;
        self.store
            .put(&p, PutPayload::from(bytes))
            .await
            .map_err(|e| FilesError::Store(e.to_string()))?;
        Ok(())
    }

    /// The bytes under `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let p = check(key)?;
        match self.store.get(&p).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| FilesError::Store(e.to_string()))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(FilesError::Store(e.to_string())),
        }
    }

    /// Removes `key`; false if it was not there.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let p = check(key)?;
        if self.get(key).await?.is_none() {
            return Ok(false);
        }
        self.store
            .delete(&p)
            .await
            .map_err(|e| FilesError::Store(e.to_string()))?;
        Ok(true)
    }

    /// Keys under `prefix` (a directory-like prefix without the trailing `/`), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let p = check(prefix)?;
        let mut v: Vec<String> = self
            .store
            .list(Some(&p))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(|e| FilesError::Store(e.to_string()))?;
        v.sort();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for ok in ["feeds/level1.body", "evidence/2026/abc-123.bin", "a"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "a//b",
            "/abs",
            "a/./b",
            "UPPER",
            "sp ace",
            "a/",
            "x\\y",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check(&"a".repeat(513)).is_err());
    }
}
