//! `tessera migrate`: creates the tables or brings them to this build's
//! version, and the check `serve --meta` makes before anything else.
//!
//! The statements run one by one (CockroachDB and YugabyteDB restrict DDL
//! inside transactions), each `IF NOT EXISTS`, and the version row is
//! written last: a migration cut short leaves no version row (or the old
//! one), so the server refuses the schema and running `tessera migrate`
//! again finishes the job.

use std::collections::BTreeSet;
use std::fmt;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::schema::{upgrade_statements, Engine, READ_VERSION, SCHEMA_VERSION, WRITE_VERSION};
use super::{PgError, Pool};

/// What `tessera migrate` found and did.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub url: String,
    pub engine: Engine,
    pub server_version: String,
    /// The SQL schema (namespace) the tables are in: the first of the
    /// connection's `search_path`.
    pub namespace: String,
    pub created_namespace: bool,
    /// The version found before, if any.
    pub before: Option<i32>,
    pub after: i32,
    /// Tables and sequences that did not exist before.
    pub created: Vec<String>,
}

impl fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database:  {} ({})", self.url, short_version(&self.server_version))?;
        let made = if self.created_namespace { " (created)" } else { "" };
        writeln!(f, "schema:    {}{made}", self.namespace)?;
        match self.created.is_empty() {
            true => writeln!(f, "created:   nothing (every table was there)")?,
            false => writeln!(f, "created:   {}", self.created.join(", "))?,
        }
        match self.before {
            Some(v) if v == self.after => write!(f, "version:   {v}, already current"),
            Some(v) => write!(f, "version:   {v} -> {}", self.after),
            None => write!(f, "version:   none -> {}", self.after),
        }
    }
}

/// "PostgreSQL 15.18", "CockroachDB CCL v23.1.11": `version()` up to the
/// build details.
fn short_version(version: &str) -> &str {
    let end = [" on ", " ("].iter().filter_map(|s| version.find(s)).min().unwrap_or(version.len());
    version.get(..end).unwrap_or(version)
}

/// Creates or upgrades the schema; idempotent. Refuses a schema newer than
/// this build knows, changing nothing.
pub async fn migrate(pool: &Pool) -> Result<MigrateReport, PgError> {
    let url = pool.target().shown.clone();
    let client = pool.get().await?;
    let server_version = server_version(&client).await?;
    let engine = Engine::detect(&server_version);
    let (namespace, created_namespace) = ensure_namespace(&client).await?;
    let before = read_version(&client).await?;
    if let Some(found) = before.filter(|v| *v > SCHEMA_VERSION) {
        return Err(PgError::SchemaNewer { url, found, known: SCHEMA_VERSION });
    }
    let existing = relations(&client).await?;
    for statement in upgrade_statements(engine, before.unwrap_or(0)) {
        client.batch_execute(&statement).await.map_err(|e| PgError::query("creating the schema", &e))?;
    }
    client
        .execute(WRITE_VERSION, &[&SCHEMA_VERSION, &engine.name()])
        .await
        .map_err(|e| PgError::query("writing the schema version", &e))?;
    let created = relations(&client).await?.difference(&existing).cloned().collect();
    Ok(MigrateReport {
        url,
        engine,
        server_version,
        namespace,
        created_namespace,
        before,
        after: SCHEMA_VERSION,
        created,
    })
}

/// The schema version, checked to be exactly this build's; the error
/// names `tessera migrate --meta URL` when that is what would fix it.
pub async fn check_schema(pool: &Pool) -> Result<i32, PgError> {
    let url = pool.target().shown.clone();
    let client = pool.get().await?;
    match read_version(&client).await? {
        None => Err(PgError::SchemaMissing { url }),
        Some(v) if v < SCHEMA_VERSION => Err(PgError::SchemaOlder { url, found: v, wanted: SCHEMA_VERSION }),
        Some(v) if v > SCHEMA_VERSION => Err(PgError::SchemaNewer { url, found: v, known: SCHEMA_VERSION }),
        Some(v) => Ok(v),
    }
}

async fn server_version(client: &Client) -> Result<String, PgError> {
    let row = client.query_one("SELECT version()", &[]).await.map_err(|e| PgError::query("SELECT version()", &e))?;
    row.try_get(0).map_err(|e| PgError::query("reading version()", &e))
}

/// The version row, or None when the table or its row is missing.
async fn read_version(client: &Client) -> Result<Option<i32>, PgError> {
    match client.query_opt(READ_VERSION, &[]).await {
        Ok(row) => row.map(|r| r.try_get(0)).transpose().map_err(|e| PgError::query("reading the schema version", &e)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(PgError::query("reading the schema version", &e)),
    }
}

/// The namespace the tables go to: `current_schema()`, or when no schema
/// of the `search_path` exists yet (a URL with `options=-c search_path=x`
/// for a new `x`), the first one named, created. Tessera's SQL never
/// qualifies a table name, so the URL alone chooses where the tables are.
async fn ensure_namespace(client: &Client) -> Result<(String, bool), PgError> {
    if let Some(current) = current_schema(client).await? {
        return Ok((current, false));
    }
    let row = client
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .map_err(|e| PgError::query("reading search_path", &e))?;
    let path: String = row.try_get(0).map_err(|e| PgError::query("reading search_path", &e))?;
    let Some(first) = first_schema(&path) else {
        let detail = format!("no schema of the search_path ({path}) exists and none can be created from it");
        return Err(PgError::Query { what: "choosing the schema", detail });
    };
    let create = format!("CREATE SCHEMA IF NOT EXISTS {first}");
    client.batch_execute(&create).await.map_err(|e| PgError::query("creating the search_path schema", &e))?;
    match current_schema(client).await? {
        Some(current) => Ok((current, true)),
        None => Err(PgError::Query { what: "choosing the schema", detail: format!("{first} still not in use") }),
    }
}

async fn current_schema(client: &Client) -> Result<Option<String>, PgError> {
    let row = client
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(|e| PgError::query("SELECT current_schema()", &e))?;
    row.try_get(0).map_err(|e| PgError::query("reading current_schema()", &e))
}

/// The first entry of a `search_path` setting other than `"$user"`, if it
/// is a plain identifier or a quoted one (so it can be written into
/// `CREATE SCHEMA` as it is).
fn first_schema(search_path: &str) -> Option<&str> {
    let first = search_path.split(',').map(str::trim).find(|s| *s != "\"$user\"" && !s.is_empty())?;
    let plain = first.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    let quoted = first.len() >= 2
        && first.starts_with('"')
        && first.ends_with('"')
        && !first.get(1..first.len() - 1).is_some_and(|inner| inner.replace("\"\"", "").contains('"'));
    (plain || quoted).then_some(first)
}

/// The names of the tables and sequences in the current schema.
async fn relations(client: &Client) -> Result<BTreeSet<String>, PgError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'S')",
            &[],
        )
        .await
        .map_err(|e| PgError::query("listing tables", &e))?;
    rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>().map_err(|e| PgError::query("listing tables", &e))
}

#[cfg(test)]
mod tests {
    use super::{first_schema, short_version};

    #[test]
    fn the_server_version_is_shortened_to_its_name_and_number() {
        let pg = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
        assert_eq!(short_version(pg), "PostgreSQL 15.18");
        assert_eq!(
            short_version("CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27)"),
            "CockroachDB CCL v23.1.11"
        );
        assert_eq!(
            short_version("PostgreSQL 11.2-YB-2.18.0.0-b0 on x86_64-pc-linux-gnu"),
            "PostgreSQL 11.2-YB-2.18.0.0-b0"
        );
    }

    #[test]
    fn the_first_search_path_schema_is_taken_when_it_is_an_identifier() {
        assert_eq!(first_schema("t_0123abcd"), Some("t_0123abcd"));
        assert_eq!(first_schema("\"$user\", public"), Some("public"));
        assert_eq!(first_schema("\"My Schema\", public"), Some("\"My Schema\""));
        assert_eq!(first_schema("\"$user\""), None);
        assert_eq!(first_schema("x; DROP TABLE y"), None);
        assert_eq!(first_schema("\"a\"\"b\""), Some("\"a\"\"b\""));
        assert_eq!(first_schema("\"a\"b\""), None);
    }
}
