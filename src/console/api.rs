//! The console's JSON API: sign-in and the session (`/api/session`), and the
//! routes of `presign.rs` and `overview.rs`, all behind [`authenticate`].
//!
//! CSRF: the cookie is `SameSite=Strict`, and every state-changing request
//! (any method but GET) must also carry the session's token in
//! `X-Tessera-Csrf`, which a page of another origin cannot read, and an
//! `Origin`, when the browser sends one, equal to the console's own.

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// The session's API path.
const SESSION: &str = "/api/session";
/// The session cookie's name.
pub const COOKIE: &str = "tessera_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-tessera-csrf";
/// The most bytes of a JSON request body.
const MAX_JSON: usize = 64 * 1024;
/// How long a failed sign-in holds the server-wide sign-in turn: a brake
/// on guessing secrets. Every attempt is checked in its turn, and a failure
/// keeps the turn this long whether or not its client waits for the answer,
/// so at most about one and a half guesses a second are checked at all.
const SIGN_IN_DELAY: Duration = Duration::from_millis(700);
/// Sign-ins that may wait for their turn; more are refused at once (429),
/// so a crowd of held-open attempts costs a bounded amount.
const MAX_WAITING_SIGN_INS: usize = 16;

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
    if let Err(e) = check_host(console, &parts) {
        facts.code = Some(e.code());
        return e.response();
    }
    let result = match (&parts.method, parts.uri.path()) {
        (&Method::POST, SESSION) => {
            facts.op = Some("ConsoleSignIn");
            sign_in(console, &parts, body, facts).await
        }
        (&Method::GET, SESSION) => {
            facts.op = Some("ConsoleSession");
            authenticate(console, &parts, facts).await.map(|who| session_reply(console, &who, StatusCode::OK))
        }
        (&Method::DELETE, SESSION) => {
            facts.op = Some("ConsoleSignOut");
            sign_out(console, &parts, facts).await
        }
        (&Method::POST, "/api/presign") => {
            facts.op = Some("ConsolePresign");
            match authenticate(console, &parts, facts).await {
                Ok(who) => presign::handle(console, &who, body).await,
                Err(e) => Err(e),
            }
        }
        (&Method::GET, "/api/overview") => {
            facts.op = Some("ConsoleOverview");
            match authenticate(console, &parts, facts).await {
                Ok(who) => overview::handle(console, &who).await,
                Err(e) => Err(e),
            }
        }
        (_, SESSION | "/api/presign" | "/api/overview") => {
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
    let turn = sign_in_turn(console).await?;
    let Some(who) = check_keys(console, &keys).await? else {
        // Quoted and escaped, and cut short: the key is whatever was sent.
        let tried: String = keys.access_key.chars().take(64).collect();
        tracing::info!(access_key = ?tried, "console sign-in refused: wrong access key or secret");
        // The turn is kept for the delay even if this client goes away.
        tokio::spawn(async move {
            tokio::time::sleep(SIGN_IN_DELAY).await;
            drop(turn);
        });
        tokio::time::sleep(SIGN_IN_DELAY).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong access key or secret"));
    };
    drop(turn);
    let tag = secret_tag(&who.secret);
    let created = console.sessions.create(&who.access_key, tag, Instant::now()).map_err(ApiError::internal)?;
    let Some((id, csrf)) = created else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many console sessions; try again later"));
    };
    facts.user = Some(who.name.clone());
    let who = Identity { csrf, ..who };
    let mut response = session_reply(console, &who, StatusCode::OK);
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{}", secure(console, parts));
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    response.headers_mut().insert(http::header::SET_COOKIE, cookie);
    Ok(response)
}

/// The server-wide sign-in turn (see [`SIGN_IN_DELAY`]), or 429 when too
/// many attempts already wait for it.
async fn sign_in_turn(console: &Console) -> Result<tokio::sync::OwnedMutexGuard<()>, ApiError> {
    struct Waiting<'a>(&'a AtomicUsize);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let waiting = Waiting(&console.sign_ins_waiting);
    if waiting.0.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING_SIGN_INS {
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many sign-in attempts; try again later"));
    }
    let turn = console.sign_in_turn.clone().lock_owned().await;
    drop(waiting);
    Ok(turn)
}

/// `; Secure` for a cookie the browser only sends over HTTPS: when the
/// console serves TLS, or sits behind an HTTPS proxy (an https `Origin`).
fn secure(console: &Console, parts: &Parts) -> &'static str {
    let https_origin = parts.headers.get(http::header::ORIGIN).is_some_and(|o| o.as_bytes().starts_with(b"https://"));
    match console.tls || https_origin {
        true => "; Secure",
        false => "",
    }
}

/// The identity of a key pair, if the secret is right; a store that cannot
/// answer is a 500, not a wrong secret.
async fn check_keys(console: &Console, keys: &SignIn) -> Result<Option<Identity>, ApiError> {
    let who = identity_of(console, &keys.access_key, String::new()).await?;
    Ok(who.filter(|who| bool::from(who.secret.as_bytes().ct_eq(keys.secret_key.as_bytes()))))
}

/// Who `access_key` belongs to now: root, a user of the store, or no one.
async fn identity_of(console: &Console, access_key: &str, csrf: String) -> Result<Option<Identity>, ApiError> {
    let app = &console.app;
    if access_key == app.access_key {
        let (name, secret) = ("root".to_string(), app.secret_key.clone());
        return Ok(Some(Identity { name, access_key: access_key.to_string(), secret, canonical_id: None, csrf }));
    }
    Ok(lookup_user(console, access_key).await?.map(|user| Identity {
        name: user.name,
        access_key: user.access_key,
        secret: user.secret_key,
        canonical_id: Some(user.canonical_id),
        csrf,
    }))
}

async fn lookup_user(console: &Console, access_key: &str) -> Result<Option<crate::store::users::UserRecord>, ApiError> {
    console.app.store.lookup(|s| s.user_by_key(access_key)).await.map_err(|e: crate::store::StoreError| {
        tracing::warn!(error = %crate::store::Chain(&e), "console: looking up an access key failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the user store could not answer; try again")
    })
}

/// `DELETE /api/session`: the session dropped, the cookie cleared.
async fn sign_out(console: &Console, parts: &Parts, facts: &mut Facts) -> ApiResult {
    authenticate(console, parts, facts).await?;
    if let Some(id) = session_id(parts) {
        console.sessions.remove(id);
    }
    let mut response = reply::empty(StatusCode::NO_CONTENT);
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}", secure(console, parts));
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
/// user has been removed since), with the CSRF token checked on every call
/// but the one that hands it out (`GET /api/session`, after a reload), and
/// the origin on every call but a GET (403): no other page can make a
/// signed-in browser change anything, or run the costly overview.
pub async fn authenticate(console: &Console, parts: &Parts, facts: &mut Facts) -> Result<Identity, ApiError> {
    let id = session_id(parts).ok_or_else(ApiError::unauthorized)?;
    let live = console.sessions.get(id, Instant::now()).ok_or_else(ApiError::unauthorized)?;
    if parts.method != Method::GET {
        check_origin(console, parts)?;
    }
    if !(parts.method == Method::GET && parts.uri.path() == SESSION) {
        check_csrf(parts, &live.csrf)?;
    }
    let Some(who) = identity_of(console, &live.access_key, live.csrf).await? else {
        console.sessions.remove(id);
        return Err(ApiError::unauthorized());
    };
    if !bool::from(secret_tag(&who.secret).ct_eq(&live.secret_tag)) {
        console.sessions.remove(id);
        return Err(ApiError::unauthorized());
    }
    facts.user = Some(who.name.clone());
    Ok(who)
}

/// The request's `X-Tessera-Csrf` must be its session's token.
fn check_csrf(parts: &Parts, csrf: &str) -> Result<(), ApiError> {
    let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
    match bool::from(sent.ct_eq(csrf.as_bytes())) {
        true => Ok(()),
        false => Err(ApiError::forbidden("missing or wrong X-Tessera-Csrf header")),
    }
}

/// The session id of the request's cookie. A request with more than one
/// `tessera_console` cookie has none: another page on this host (cookies
/// ignore ports) could have planted a second one to pin the browser to a
/// session of its choosing.
fn session_id(parts: &Parts) -> Option<&str> {
    let prefix = format!("{COOKIE}=");
    let mut ids = parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(prefix.as_str()));
    let id = ids.next().filter(|id| !id.is_empty())?;
    ids.next().is_none().then_some(id)
}

/// An `Origin` header, when present, must be one of the console's origins
/// (its own addresses, and every `--console-origin`).
fn check_origin(console: &Console, parts: &Parts) -> Result<(), ApiError> {
    let Some(origin) = parts.headers.get(http::header::ORIGIN) else { return Ok(()) };
    match console.app.console_origins.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
        true => Ok(()),
        false => Err(ApiError::forbidden("cross-origin request refused")),
    }
}

/// The API answers only requests for one of the console's own origins: a
/// page whose host name was rebound to this address (DNS rebinding) sends
/// its own name in `Host`, and is refused (421). Reached under another
/// name, through a proxy, the console needs that name in `--console-origin`.
fn check_host(console: &Console, parts: &Parts) -> Result<(), ApiError> {
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    match console.app.console_origins.iter().any(|o| authority_of(o) == Some(host)) {
        true => Ok(()),
        false => Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "this console is not served under that host name (see --console-origin)",
        )),
    }
}

/// `host:port` of an origin URL.
fn authority_of(origin: &str) -> Option<&str> {
    origin.split_once("://").map(|(_, rest)| rest)
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
