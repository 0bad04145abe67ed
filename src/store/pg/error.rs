//! The one error type of the metadata database code.

/// Why a metadata database operation failed. Every message that names the
/// database names it by its redacted URL ([`redact`]).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("--meta {url}: {detail}")]
    Url { url: String, detail: String },
    /// Not a `#[source]`: the text already says it, once.
    #[error("TLS for the metadata database: {0}")]
    Tls(crate::tls::TlsError),
    #[error("no trusted CA certificates found for the metadata database's TLS: give --meta-ca FILE")]
    NoRoots,
    #[error("cannot connect to the metadata database at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("no metadata database connection became free within {0:?} (--meta-pool connections all busy)")]
    PoolTimeout(std::time::Duration),
    #[error("{what}: {detail}")]
    Query { what: &'static str, detail: String },
    #[error("the metadata database at {url} has no Tessera schema: run `tessera migrate --meta {url}` first")]
    SchemaMissing { url: String },
    #[error(
        "the metadata database at {url} has schema version {found}, older than this tessera's {wanted}: \
         run `tessera migrate --meta {url}`"
    )]
    SchemaOlder { url: String, found: i32, wanted: i32 },
    #[error(
        "the metadata database at {url} has schema version {found}, newer than this tessera knows ({known}): \
         upgrade tessera (`tessera migrate --meta {url}` cannot go back)"
    )]
    SchemaNewer { url: String, found: i32, known: i32 },
    #[error("the metadata database kept refusing the transaction as conflicting ({attempts} attempts): {detail}")]
    Busy { attempts: u32, detail: String },
    #[error("the metadata database is unreachable: {detail}")]
    Unavailable { detail: String },
    #[error("the connection failed after COMMIT was sent; the transaction may or may not have committed: {detail}")]
    InDoubt { detail: String },
}

impl From<crate::tls::TlsError> for PgError {
    fn from(e: crate::tls::TlsError) -> Self {
        PgError::Tls(e)
    }
}

impl PgError {
    /// A failed statement, with what it was for.
    pub fn query(what: &'static str, e: &tokio_postgres::Error) -> PgError {
        PgError::Query { what, detail: describe(e) }
    }
}

/// The whole text of a driver error: tokio-postgres's `Display` says only
/// "db error" and keeps the server's message and SQLSTATE in its source.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
