//! A fresh PostgreSQL database for one test, on the server named by `WATCHHOUSE_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, trust). Shared by the root tests
//! (`tests/common`) and the store's conformance suite (`#[path]`). Test helpers: they panic
//! with what to do when PostgreSQL is not there.

/// A database made for one test; [`PgDb::drop_db`] removes it.
pub struct PgDb {
    admin: String,
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl PgDb {
    /// Creates the database.
    pub async fn new() -> PgDb {
        let admin = std::env::var("WATCHHOUSE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("wh_test_{}", uuid::Uuid::new_v4().simple());
        PgDb::connect(&admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = admin
            .rsplit_once('/')
            .expect("WATCHHOUSE_TEST_POSTGRES is a URL ending in /DATABASE")
            .0;
        PgDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }

    /// A connection to `url` (its driver task runs in the background).
    pub async fn connect(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {url} is needed for this test ({e}); .ci/run starts it")
            });
        tokio::spawn(conn);
        client
    }

    /// One number from a query on the test database.
    pub async fn count(&self, sql: &str) -> i64 {
        PgDb::connect(&self.url)
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Every raw event stored, decoded from the event blocks.
    #[allow(dead_code)]
    pub async fn stored_events(&self) -> Vec<watchhouse_store::StoredEvent> {
        let c = PgDb::connect(&self.url).await;
        let mut out = Vec::new();
        let rs = c
            .query(
                "SELECT member_id, collector_id, data FROM event_blocks",
                &[],
            )
            .await
            .unwrap();
        for r in rs {
            out.extend(watchhouse_store::block::decode(r.get(0), r.get(1), r.get(2)).unwrap());
        }
        out
    }

    /// Drops the database.
    pub async fn drop_db(self) {
        PgDb::connect(&self.admin)
            .await
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}
