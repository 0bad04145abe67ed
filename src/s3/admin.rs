//! Tessera's own API on the S3 listener, under `/_tessera/`: no bucket name
//! can begin with `_`, so these paths can never name a bucket. Requests are
//! signed like any S3 request (`auth::verify` runs first), and only the root
//! credentials are accepted; anything else is `AccessDenied`.
//!
//! `POST /_tessera/admin/backup?out=<absolute path on the server>` writes a
//! consistent backup of the data folder (see `store/backup.rs`); `tessera
//! backup` sends it when a running server holds the database.

use http::request::Parts;
use http::{Method, Response};

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::xml::XmlWriter;
use super::{xml_response, AppState};
use crate::auth::verify::VerifiedRequest;
use crate::http::body::Body;
use crate::http::route::Query;
use crate::store::{BackupError, BackupReport};

pub const PREFIX: &str = "/_tessera/";
pub const BACKUP_PATH: &str = "/_tessera/admin/backup";

/// Whether a path-style request targets the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Runs an authenticated admin request.
pub async fn handle(state: &AppState, parts: &Parts, auth: &VerifiedRequest) -> S3Result<Response<Body>> {
    if auth.access_key != state.access_key {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    match (parts.uri.path(), &parts.method) {
        (BACKUP_PATH, &Method::POST) => backup(state, &Query::parse(parts.uri.query())).await,
        (BACKUP_PATH, _) => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        _ => Err(S3Error::with_message(S3ErrorCode::InvalidRequest, "No such Tessera admin endpoint")),
    }
}

/// The backup runs on a blocking thread; the reply says what was written.
async fn backup(state: &AppState, query: &Query) -> S3Result<Response<Body>> {
    let out = query.get("out").map(std::path::PathBuf::from).filter(|p| p.is_absolute()).ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "`out` must be an absolute path on the server")
            .with_extra("ArgumentName", "out")
    })?;
    tracing::info!(out = %out.display(), "backup started");
    let report = state.store.run(move |s| s.backup(&out).map_err(backup_error)).await?;
    tracing::info!(objects = report.objects, blobs = report.blobs, bytes = report.bytes, "backup done");
    xml_response(report_xml(&report))
}

/// Only root gets here, so the reason of a failure is shown (it names paths
/// on the server the operator chose, and local I/O errors).
fn backup_error(e: BackupError) -> S3Error {
    match e {
        BackupError::Refused(why) => {
            S3Error::with_message(S3ErrorCode::InvalidArgument, why).with_extra("ArgumentName", "out")
        }
        e => {
            let why = crate::store::Chain(&e).to_string();
            S3Error::with_message(S3ErrorCode::InternalError, format!("backup failed: {why}")).with_cause(e)
        }
    }
}

fn report_xml(report: &BackupReport) -> String {
    let mut w = XmlWriter::new("BackupResult");
    w.elem_u64("Objects", report.objects)
        .elem_u64("Blobs", report.blobs)
        .elem_u64("Linked", report.linked)
        .elem_u64("Bytes", report.bytes)
        .elem("Seconds", &format!("{:.3}", report.seconds));
    w.finish("BackupResult")
}
