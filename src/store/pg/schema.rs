//! The metadata tables, by schema version and engine (docs/scale-out.md).
//! Each table holds what one group of `store::meta::MetaTxn` operations
//! keeps (`pg/txn.rs`). Keys that are compared by order or range are
//! `bytea`, which every engine compares as unsigned bytes whatever the
//! database's collation; records are the postcard bytes of `store::schema`. Only the
//! DDL differs between engines; the statements that read and write rows
//! are one dialect. Every statement is `IF NOT EXISTS`, so running them
//! again repairs a half-created schema instead of failing on it.

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The SQL engine behind the URL, from `SELECT version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Cockroach,
    Yugabyte,
}

impl Engine {
    /// CockroachDB says "CockroachDB CCL v23.1..."; YugabyteDB reports a
    /// PostgreSQL version with "-YB-" in it ("PostgreSQL 11.2-YB-2.18...").
    pub fn detect(version: &str) -> Engine {
        if version.contains("CockroachDB") {
            Engine::Cockroach
        } else if version.contains("-YB-") {
            Engine::Yugabyte
        } else {
            Engine::Postgres
        }
    }

    /// The name stored in the schema row.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::Cockroach => "cockroachdb",
            Engine::Yugabyte => "yugabytedb",
        }
    }

    /// YugabyteDB hash-shards the first key column unless told `ASC`, and
    /// a hash-sharded key cannot be range-scanned in order; PostgreSQL
    /// refuses `ASC` in a key. So every key column carries this suffix.
    fn key_order(self) -> &'static str {
        match self {
            Engine::Yugabyte => " ASC",
            Engine::Postgres | Engine::Cockroach => "",
        }
    }
}

/// The row that says which version the tables are at, written last by
/// `tessera migrate` so that a version present means tables complete.
pub const VERSION_TABLE: &str = "tessera_schema";

/// Every table of version 1, in creation order.
pub const TABLES_V1: &[&str] = &[
    "tessera_schema",
    "buckets",
    "objects",
    "versions",
    "blobs",
    "blob_crcs",
    "blob_bodies",
    "dead_blobs",
    "content",
    "blob_content",
    "content_holders",
    "uploads",
    "parts",
    "completed_uploads",
    "users",
    "gateways",
    "leases",
];

/// Version 1's DDL: `{k}` stands for the
/// key order suffix of [`Engine::key_order`].
const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tessera_schema (id int NOT NULL CHECK (id = 1), version int NOT NULL, \
     engine text NOT NULL, PRIMARY KEY (id{k}))",
    "CREATE TABLE IF NOT EXISTS buckets (name bytea NOT NULL, record bytea NOT NULL, PRIMARY KEY (name{k}))",
    "CREATE TABLE IF NOT EXISTS objects (bucket bytea NOT NULL, key bytea NOT NULL, record bytea NOT NULL, \
     PRIMARY KEY (bucket{k}, key{k}))",
    "CREATE TABLE IF NOT EXISTS versions (bucket bytea NOT NULL, key bytea NOT NULL, seq bigint NOT NULL, \
     record bytea NOT NULL, PRIMARY KEY (bucket{k}, key{k}, seq{k}))",
    "CREATE SEQUENCE IF NOT EXISTS version_seq",
    "CREATE TABLE IF NOT EXISTS blobs (id bytea NOT NULL, refs bigint NOT NULL CHECK (refs > 0), \
     PRIMARY KEY (id{k}))",
    "CREATE TABLE IF NOT EXISTS blob_crcs (id bytea NOT NULL, crcs bytea NOT NULL, PRIMARY KEY (id{k}))",
    "CREATE TABLE IF NOT EXISTS blob_bodies (id bytea NOT NULL, body bytea NOT NULL, PRIMARY KEY (id{k}))",
    "CREATE TABLE IF NOT EXISTS dead_blobs (id bytea NOT NULL, freed_at timestamptz NOT NULL DEFAULT now(), \
     PRIMARY KEY (id{k}))",
    "CREATE TABLE IF NOT EXISTS content (key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (key{k}))",
    "CREATE TABLE IF NOT EXISTS blob_content (blob bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (blob{k}))",
    "CREATE TABLE IF NOT EXISTS content_holders (blob bytea NOT NULL, owner text NOT NULL, refs bigint NOT NULL, \
     PRIMARY KEY (blob{k}, owner{k}))",
    "CREATE TABLE IF NOT EXISTS uploads (id bytea NOT NULL, bucket bytea NOT NULL, key bytea NOT NULL, \
     initiated_ms bigint NOT NULL, record bytea NOT NULL, PRIMARY KEY (id{k}))",
    "CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket{k}, key{k}, id{k})",
    "CREATE TABLE IF NOT EXISTS parts (upload bytea NOT NULL, part int NOT NULL, record bytea NOT NULL, \
     PRIMARY KEY (upload{k}, part{k}))",
    "CREATE TABLE IF NOT EXISTS completed_uploads (bucket bytea NOT NULL, key bytea NOT NULL, record bytea NOT NULL, \
     PRIMARY KEY (bucket{k}, key{k}))",
    "CREATE TABLE IF NOT EXISTS users (name text NOT NULL, access_key text NOT NULL UNIQUE, record bytea NOT NULL, \
     PRIMARY KEY (name{k}))",
    "CREATE TABLE IF NOT EXISTS gateways (id text NOT NULL, host text, pid int, started_at timestamptz, \
     expires_at timestamptz NOT NULL, last_write_at timestamptz, PRIMARY KEY (id{k}))",
    "CREATE TABLE IF NOT EXISTS leases (name text NOT NULL, holder text, expires_at timestamptz, cursor bytea, \
     PRIMARY KEY (name{k}))",
];

/// PostgreSQL only: bodies (up to 32 KiB, mostly incompressible) stored
/// out of line without pglz trying to compress each one.
const V1_POSTGRES: &[&str] = &["ALTER TABLE blob_bodies ALTER COLUMN body SET STORAGE EXTERNAL"];

/// The statements that bring a schema at version `from` (0: none) to
/// [`SCHEMA_VERSION`] on `engine`, in order.
pub fn upgrade_statements(engine: Engine, from: i32) -> Vec<String> {
    let mut statements = Vec::new();
    if from < 1 {
        statements.extend(V1.iter().map(|s| s.replace("{k}", engine.key_order())));
        if engine == Engine::Postgres {
            statements.extend(V1_POSTGRES.iter().map(|s| s.to_string()));
        }
    }
    statements
}

/// Writes the version row: the last statement of every migration.
pub const WRITE_VERSION: &str = "INSERT INTO tessera_schema (id, version, engine) VALUES (1, $1, $2) \
     ON CONFLICT (id) DO UPDATE SET version = excluded.version, engine = excluded.engine";

/// Reads the version row.
pub const READ_VERSION: &str = "SELECT version FROM tessera_schema WHERE id = 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_told_apart_by_their_version_text() {
        let pg = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
        assert_eq!(Engine::detect(pg), Engine::Postgres);
        let crdb = "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)";
        assert_eq!(Engine::detect(crdb), Engine::Cockroach);
        let yb = "PostgreSQL 11.2-YB-2.18.0.0-b0 on x86_64-pc-linux-gnu, compiled by clang version 15.0.3";
        assert_eq!(Engine::detect(yb), Engine::Yugabyte);
    }

    #[test]
    fn yugabyte_keys_are_range_sharded_and_postgres_keys_plain() {
        let yb = upgrade_statements(Engine::Yugabyte, 0).join("\n");
        assert!(yb.contains("PRIMARY KEY (bucket ASC, key ASC)"), "{yb}");
        assert!(!yb.contains("SET STORAGE"), "{yb}");
        let pg = upgrade_statements(Engine::Postgres, 0).join("\n");
        assert!(pg.contains("PRIMARY KEY (bucket, key)") && !pg.contains("ASC"), "{pg}");
        assert!(pg.contains("SET STORAGE EXTERNAL"), "{pg}");
        assert!(!pg.contains("{k}"));
    }

    #[test]
    fn every_statement_is_idempotent_and_every_table_is_created() {
        for engine in [Engine::Postgres, Engine::Cockroach, Engine::Yugabyte] {
            let statements = upgrade_statements(engine, 0);
            for s in statements.iter().filter(|s| s.starts_with("CREATE")) {
                assert!(s.contains(" IF NOT EXISTS "), "{s}");
            }
            for table in TABLES_V1 {
                let create = format!("CREATE TABLE IF NOT EXISTS {table} (");
                assert!(statements.iter().any(|s| s.starts_with(&create)), "{table}");
            }
        }
        assert!(upgrade_statements(Engine::Postgres, SCHEMA_VERSION).is_empty());
    }
}
