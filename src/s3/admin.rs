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
use super::{xml_response, AppState, Principal};
use crate::http::body::Body;
use crate::http::route::Query;
use crate::store::{BackupError, BackupReport};

pub const PREFIX: &str = "/_tessera/";
pub const BACKUP_PATH: &str = "/_tessera/admin/backup";
/// `GET` lists users; `POST ?name=N[&email=E]` adds one, `POST ?name=N&rotate`
/// gives one a new secret, `DELETE ?name=N` removes one (`tessera user`).
pub const USERS_PATH: &str = "/_tessera/admin/users";
/// `GET`: the store's figures (`tessera stats`), as JSON.
pub const STATS_PATH: &str = "/_tessera/admin/stats";

/// Whether a path-style request targets the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Runs an authenticated admin request.
pub async fn handle(state: &AppState, parts: &Parts, principal: &Principal) -> S3Result<Response<Body>> {
    if *principal != Principal::Root {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    match (parts.uri.path(), &parts.method) {
        (BACKUP_PATH, &Method::POST) => backup(state, &Query::parse(parts.uri.query())).await,
        (BACKUP_PATH, _) => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        (USERS_PATH, method) => users(state, method, &Query::parse(parts.uri.query())).await,
        (STATS_PATH, &Method::GET) => stats(state).await,
        (STATS_PATH, _) => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        _ => Err(S3Error::with_message(S3ErrorCode::InvalidRequest, "No such Tessera admin endpoint")),
    }
}

/// The user operations of `tessera user`, answered with the users changed
/// (secrets included: only root gets here, and it asked for them).
async fn users(state: &AppState, method: &Method, query: &Query) -> S3Result<Response<Body>> {
    let name = query.get("name").map(str::to_string);
    let email = query.get("email").map(str::to_string);
    let rotate = query.has("rotate");
    let named = |name: Option<String>| {
        name.filter(|n| crate::store::users::valid_name(n)).ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::InvalidArgument, "`name` must be 1-64 of letters, digits and +=,.@_-")
        })
    };
    let changed = match (method, rotate) {
        (&Method::GET, _) => state.store.run(|s| s.users()).await?,
        (&Method::POST, false) => {
            let user = crate::config::new_user(&named(name)?, email).map_err(S3Error::internal)?;
            vec![state.store.run(move |s| s.add_user(user)).await?]
        }
        (&Method::POST, true) => {
            let (name, secret) = (named(name)?, crate::config::new_secret().map_err(S3Error::internal)?);
            vec![state.store.run(move |s| s.set_user_secret(&name, secret)).await?]
        }
        (&Method::DELETE, _) => {
            let name = named(name)?;
            vec![state.store.run(move |s| s.remove_user(&name)).await?]
        }
        _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    };
    if method != Method::GET {
        tracing::info!(user = ?changed.first().map(|u| &u.name), %method, rotate, "user changed through the admin API");
    }
    xml_response(users_xml(&changed, method != Method::GET))
}

/// `<Users><User>...</User></Users>`; secrets only when `with_secrets`.
pub fn users_xml(users: &[crate::store::users::UserRecord], with_secrets: bool) -> String {
    let mut w = XmlWriter::new("Users");
    for user in users {
        w.start("User").elem("Name", &user.name).elem("AccessKeyId", &user.access_key);
        if with_secrets {
            w.elem("SecretAccessKey", &user.secret_key);
        }
        w.elem("CanonicalId", &user.canonical_id).opt("Email", user.email.as_deref()).end("User");
    }
    w.finish("Users")
}

/// The store's figures, walked on a blocking thread.
async fn stats(state: &AppState) -> S3Result<Response<Body>> {
    let stats = state.store.run(|s| s.stats()).await?;
    let json = serde_json::to_string(&stats).map_err(S3Error::internal)?;
    Response::builder()
        .status(http::StatusCode::OK)
        .header("content-type", "application/json")
        .body(crate::http::body::full(json))
        .map_err(S3Error::internal)
}

/// The backup runs on a blocking thread; the reply says what was written.
async fn backup(state: &AppState, query: &Query) -> S3Result<Response<Body>> {
    let out = query.get("out").map(std::path::PathBuf::from).filter(|p| p.is_absolute()).ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "`out` must be an absolute path on the server")
            .with_extra("ArgumentName", "out")
    })?;
    tracing::info!(out = %out.display(), "backup started");
    let report = state.store.backup_beside_requests(out).await.map_err(backup_error)?;
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
