//! A throw-away PostgreSQL for the tests of the shared metadata backend
//! (issue 17): `TESSERA_TEST_PG` names the cluster (scripts/pg-test-cluster.sh
//! starts one and sets it; ./test.sh sources it). Each test works in a
//! schema of its own (`t_<random>`, chosen by `search_path` in the URL), so
//! tests run in parallel on one cluster.

use std::process::Command;

use tessera::store::pg::{MetaTarget, Pool, PoolOptions};
use tokio_postgres::NoTls;

/// The cluster's URL without its query, or None (with the reason printed)
/// when no cluster is given; panics under CI, where one must be.
pub fn cluster() -> Option<String> {
    match std::env::var("TESSERA_TEST_PG").ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url.split('?').next().unwrap_or_default().to_string()),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TESSERA_TEST_PG is not: run ./test.sh, which starts scripts/pg-test-cluster.sh")
        }
        None => {
            eprintln!("skipped: TESSERA_TEST_PG is not set (source scripts/pg-test-cluster.sh to run this test)");
            None
        }
    }
}

/// One test's own schema in the test cluster, dropped at the end.
pub struct Db {
    pub base: String,
    pub schema: String,
}

impl Db {
    /// A schema name not used yet; the schema itself is created by
    /// `tessera migrate` or [`Db::create`].
    pub fn new() -> Option<Db> {
        let base = cluster()?;
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).unwrap();
        Some(Db { base, schema: format!("t_{}", hex::encode(bytes)) })
    }

    /// The URL that puts this test's tables in its schema.
    pub fn url(&self) -> String {
        self.url_with("sslmode=disable")
    }

    /// The URL, the schema left in place when this is dropped.
    pub fn keep(self) -> String {
        let url = self.url();
        std::mem::forget(self);
        url
    }

    pub fn url_with(&self, query: &str) -> String {
        format!("{}?{query}&options=-c%20search_path%3D{}", self.base, self.schema)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub async fn create(&self) {
        self.client().await.batch_execute(&format!("CREATE SCHEMA {}", self.schema)).await.unwrap();
    }

    pub fn pool(&self, options: PoolOptions) -> Pool {
        Pool::new(MetaTarget::parse(&self.url(), None).unwrap(), None, options).unwrap()
    }
}

impl Drop for Db {
    /// Best effort, on a thread of its own (a test may be inside a runtime).
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let url = format!("{base}?sslmode=disable");
                if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
                }
            });
        })
        .join();
    }
}

/// `tessera migrate --meta URL`; its report.
pub fn migrate(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["migrate", "--meta", url])
        .env_remove("TESSERA_META")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tessera migrate");
    assert!(out.status.success(), "tessera migrate: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `sql` (one or more statements) at `url`; the first column of each
/// row returned, as text.
pub fn query_texts(url: &str, sql: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let messages = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or_default().to_string()),
                _ => None,
            })
            .collect()
    })
}
