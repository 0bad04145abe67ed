//! The console's JSON API: sign-in and the session (`/api/session`), and the
//! routes of `presign.rs` and `overview.rs`, all behind [`authenticate`].
//!
//! CSRF: the cookie is `SameSite=Strict`, and every state-changing request
//! (any method but GET) must also carry the session's token in
//! `X-Tessera-Csrf`, which a page of another origin cannot read, and an
//! `Origin`, when the browser sends one, equal to the console's own.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::listen::RequestBody;
use super::reply::{self, ApiError, ApiResult};
use super::session::secret_tag;
use super::{overview, presign, Console};
use crate::access_log::Facts;
use crate::http::body::Body;

/// The session cookie's name.
pub const COOKIE: &str = "tessera_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-tessera-csrf";
/// The most bytes of a JSON request body.
const MAX_JSON: usize = 64 * 1024;
/// How long a failed sign-in waits before its answer: a brake on guessing
/// secrets (a fixed delay, the same for every wrong key or secret, and
/// failures wait in turn, so at most about one guess a second gets an answer).
const SIGN_IN_DELAY: Duration = Duration::from_millis(700);

/// Who a request's session belongs to, with the secret its URLs are signed with.
pub struct Identity {
    pub name: String,
    pub access_key: String,
    pub secret: String,
    /// The user's canonical id; None for root (who owns as `root` and sees all).
    pub canonical_id: Option<String>,
    pub csrf: String,
}

impl Identity {
    pub fn is_root(&self) -> bool {
        self.canonical_id.is_none()
    }
}

pub async fn handle(console: &Console, req: Request<RequestBody>, facts: &mut Facts) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let result = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/api/session") => {
            facts.op = Some("ConsoleSignIn");
            sign_in(console, &parts, body, facts).await
        }
        (&Method::GET, "/api/session") => {
            facts.op = Some("ConsoleSession");
            authenticate(console, &parts, facts).map(|who| session_reply(console, &who, StatusCode::OK))
        }
        (&Method::DELETE, "/api/session") => {
            facts.op = Some("ConsoleSignOut");
            sign_out(console, &parts, facts)
        }
        (&Method::POST, "/api/presign") => {
            facts.op = Some("ConsolePresign");
            match authenticate(console, &parts, facts) {
                Ok(who) => presign::handle(console, &who, body).await,
                Err(e) => Err(e),
            }
        }
        (&Method::GET, "/api/overview") => {
            facts.op = Some("ConsoleOverview");
            match authenticate(console, &parts, facts) {
                Ok(who) => overview::handle(console, &who).await,
                Err(e) => Err(e),
            }
        }
        (_, "/api/session" | "/api/presign" | "/api/overview") => {
            Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"))
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "no such API")),
    };
    result.unwrap_or_else(|e| {
        facts.code = Some(e.code());
        e.response()
    })
}

#[derive(serde::Deserialize)]
struct SignIn {
    access_key: String,
    secret_key: String,
}

/// `POST /api/session`: the keys checked (root's, or a user's from the
/// store, the secret compared in constant time), then a new session.
async fn sign_in(console: &Console, parts: &Parts, body: RequestBody, facts: &mut Facts) -> ApiResult {
    check_origin(console, parts)?;
    let keys: SignIn = read_json(console, body).await?;
    let Some(who) = check_keys(console, &keys) else {
        // Quoted and escaped, and cut short: the key is whatever was sent.
        let tried: String = keys.access_key.chars().take(64).collect();
        tracing::info!(access_key = ?tried, "console sign-in refused: wrong access key or secret");
        // One failure at a time, server-wide: parallel guesses queue
        // behind each other instead of each waiting its own delay.
        let _turn = console.failed_sign_ins.lock().await;
        tokio::time::sleep(SIGN_IN_DELAY).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong access key or secret"));
    };
    let tag = secret_tag(&who.secret);
    let (id, csrf) = console.sessions.create(&who.access_key, tag, Instant::now()).map_err(ApiError::internal)?;
    facts.user = Some(who.name.clone());
    let who = Identity { csrf, ..who };
    let mut response = session_reply(console, &who, StatusCode::OK);
    let secure = if console.tls { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    response.headers_mut().insert(http::header::SET_COOKIE, cookie);
    Ok(response)
}

/// The identity of a key pair, if the secret is right.
fn check_keys(console: &Console, keys: &SignIn) -> Option<Identity> {
    let app = &console.app;
    let (name, secret, canonical_id) = match keys.access_key == app.access_key {
        true => ("root".to_string(), app.secret_key.clone(), None),
        false => {
            let user = lookup_user(console, &keys.access_key)?;
            (user.name, user.secret_key, Some(user.canonical_id))
        }
    };
    let right = bool::from(secret.as_bytes().ct_eq(keys.secret_key.as_bytes()));
    right.then(|| Identity { name, access_key: keys.access_key.clone(), secret, canonical_id, csrf: String::new() })
}

fn lookup_user(console: &Console, access_key: &str) -> Option<crate::store::users::UserRecord> {
    match console.app.store.user_by_key(access_key) {
        Ok(user) => user,
        Err(e) => {
            tracing::warn!(error = %crate::store::Chain(&e), "console: looking up an access key failed");
            None
        }
    }
}

/// `DELETE /api/session`: the session dropped, the cookie cleared.
fn sign_out(console: &Console, parts: &Parts, facts: &mut Facts) -> ApiResult {
    authenticate(console, parts, facts)?;
    if let Some(id) = session_id(parts) {
        console.sessions.remove(id);
    }
    let mut response = reply::empty(StatusCode::NO_CONTENT);
    let secure = if console.tls { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(http::header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The session JSON: who is signed in and where the S3 endpoint is; never the secret.
fn session_reply(console: &Console, who: &Identity, status: StatusCode) -> Response<Body> {
    let doc = serde_json::json!({
        "user": who.name,
        "access_key": who.access_key,
        "root": who.is_root(),
        "endpoint": console.s3_url,
        "region": console.app.region,
        "csrf_token": who.csrf,
    });
    reply::json(status, &doc)
}

/// The request's live session and its user (401 without one, or when the
/// user has been removed since), and for any method but GET and HEAD the
/// CSRF token and the origin checked (403).
pub fn authenticate(console: &Console, parts: &Parts, facts: &mut Facts) -> Result<Identity, ApiError> {
    let id = session_id(parts).ok_or_else(ApiError::unauthorized)?;
    let live = console.sessions.get(id, Instant::now()).ok_or_else(ApiError::unauthorized)?;
    if parts.method != Method::GET && parts.method != Method::HEAD {
        check_origin(console, parts)?;
        let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
        if !bool::from(sent.ct_eq(live.csrf.as_bytes())) {
            return Err(ApiError::forbidden("missing or wrong X-Tessera-Csrf header"));
        }
    }
    let app = &console.app;
    let who = match live.access_key == app.access_key {
        true => Identity {
            name: "root".into(),
            access_key: live.access_key,
            secret: app.secret_key.clone(),
            canonical_id: None,
            csrf: live.csrf,
        },
        false => {
            let Some(user) = lookup_user(console, &live.access_key) else {
                console.sessions.remove(id);
                return Err(ApiError::unauthorized());
            };
            Identity {
                name: user.name,
                access_key: user.access_key,
                secret: user.secret_key,
                canonical_id: Some(user.canonical_id),
                csrf: live.csrf,
            }
        }
    };
    if !bool::from(secret_tag(&who.secret).ct_eq(&live.secret_tag)) {
        console.sessions.remove(id);
        return Err(ApiError::unauthorized());
    }
    facts.user = Some(who.name.clone());
    Ok(who)
}

/// The session id of the request's cookie.
fn session_id(parts: &Parts) -> Option<&str> {
    let prefix = format!("{COOKIE}=");
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(prefix.as_str()))
        .filter(|id| !id.is_empty())
}

/// An `Origin` header, when present, must be the console's own: the
/// request's `scheme://Host`, or a `--console-origin`.
fn check_origin(console: &Console, parts: &Parts) -> Result<(), ApiError> {
    let Some(origin) = parts.headers.get(http::header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default();
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let scheme = if console.tls { "https" } else { "http" };
    let own = !host.is_empty() && origin.strip_prefix(scheme).and_then(|r| r.strip_prefix("://")) == Some(host);
    match own || console.extra_origins.iter().any(|o| o == origin) {
        true => Ok(()),
        false => Err(ApiError::forbidden("cross-origin request refused")),
    }
}

/// A JSON body of at most [`MAX_JSON`] bytes, sent within `--body-timeout`
/// (a client that trickles its body does not hold a connection for ever).
pub async fn read_json<T: DeserializeOwned>(console: &Console, body: RequestBody) -> Result<T, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_JSON);
    let Ok(collected) = tokio::time::timeout(console.app.body_timeout, limited.collect()).await else {
        return Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request body was not sent in time"));
    };
    let bytes: Bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the JSON body is larger than 64 KiB"))
        }
        Err(_) => return Err(ApiError::bad_request("the request body could not be read")),
    };
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("not the JSON expected: {e}")))
}
