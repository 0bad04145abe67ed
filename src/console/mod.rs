//! The web console (issue 16): a page to browse, upload, download and
//! share, served by `tessera serve` on a listener of its own (`--console`,
//! default 127.0.0.1:9001), so that no console path can clash with a bucket
//! name on the S3 listener.
//!
//! The console serves the page's files (embedded, `static_files.rs`) and a
//! small JSON API (`api.rs`): sign-in to a cookie session, presigned URLs
//! for the page's S3 requests (`presign.rs`), and a storage overview
//! (`overview.rs`). The page sends its object bytes straight to the S3
//! endpoint with those URLs; the S3 listener lets the console's origin do so
//! (`s3/console_cors.rs`). docs/architecture.md and docs/security.md say why.

mod api;
mod listen;
mod overview;
mod presign;
mod reply;
pub mod session;
mod static_files;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use http::HeaderValue;

pub use listen::serve;

use crate::s3::AppState;

/// The console's state: the S3 server's (store, keys, metrics), where the
/// page finds the S3 endpoint, and the sessions.
pub struct Console {
    app: Arc<AppState>,
    /// The S3 endpoint as the browser reaches it (`http://127.0.0.1:9000`).
    s3_url: String,
    /// Its authority, the `Host` a presigned URL is signed for.
    s3_host: String,
    /// Whether the console is served over TLS (the cookie is `Secure` then).
    tls: bool,
    csp: HeaderValue,
    sessions: session::Sessions,
    /// The server-wide sign-in turn, held by a failure for its delay
    /// (`api.rs`), and how many sign-ins wait for it.
    sign_in_turn: Arc<tokio::sync::Mutex<()>>,
    sign_ins_waiting: AtomicUsize,
    /// Overview walks running at once: at most one (each reads every
    /// object row of the user's buckets).
    overview_walks: tokio::sync::Semaphore,
}

impl Console {
    /// `s3_url` is `--console-s3-url` or [`default_s3_url`]'s answer.
    /// The API serves only `app.console_origins` (the console's addresses and
    /// every `--console-origin`).
    pub fn new(app: Arc<AppState>, s3_url: &str, tls: bool) -> Result<Console, String> {
        let uri: http::Uri = s3_url.parse().map_err(|e| format!("S3 URL `{s3_url}`: {e}"))?;
        let authority = uri.authority().ok_or_else(|| format!("S3 URL `{s3_url}` has no host"))?;
        let scheme = uri.scheme_str().unwrap_or("http");
        let default_port = matches!((scheme, authority.port_u16()), ("http", Some(80)) | ("https", Some(443)));
        // Browsers leave a default port out of `Host`: sign what they send.
        let s3_host = match default_port {
            true => authority.host().to_string(),
            false => authority.as_str().to_string(),
        };
        let s3_origin = format!("{scheme}://{s3_host}");
        let csp = format!(
            "default-src 'self'; connect-src 'self' {s3_origin}; img-src 'self' data: blob:; style-src 'self'; \
             script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        let csp = HeaderValue::from_str(&csp).map_err(|_| format!("S3 URL `{s3_url}` cannot go in a header"))?;
        Ok(Console {
            app,
            s3_url: s3_origin,
            s3_host,
            tls,
            csp,
            sessions: session::Sessions::default(),
            sign_in_turn: Arc::new(tokio::sync::Mutex::new(())),
            sign_ins_waiting: AtomicUsize::new(0),
            overview_walks: tokio::sync::Semaphore::new(1),
        })
    }

    /// The S3 endpoint URL given to the page.
    pub fn s3_url(&self) -> &str {
        &self.s3_url
    }
}

/// Where a browser on this machine reaches the S3 listener: its scheme and
/// address, with a wildcard address (0.0.0.0, ::) replaced by 127.0.0.1.
pub fn default_s3_url(listen: SocketAddr, tls: bool) -> String {
    format!("{}://{}", scheme(tls), reachable(listen))
}

/// The URL the start-up banner shows for the console.
pub fn console_url(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{}/", scheme(tls), reachable(addr))
}

/// The origins the console's page can have, which the S3 listener serves
/// CORS to: its own address, on loopback or a wildcard address the same port
/// as `localhost` and `127.0.0.1` too (browsers send the name typed), and
/// every `--console-origin`.
pub fn origins(addr: SocketAddr, tls: bool, extra: &[String]) -> Vec<String> {
    let scheme = scheme(tls);
    let mut out = vec![format!("{scheme}://{addr}")];
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        let port = addr.port();
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            out.push(format!("{scheme}://{host}:{port}"));
        }
    }
    out.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    out.retain(|o| !o.contains("0.0.0.0") && !o.contains("[::]:") && seen.insert(o.clone()));
    out
}

fn scheme(tls: bool) -> &'static str {
    match tls {
        true => "https",
        false => "http",
    }
}

fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip().is_unspecified() {
        true => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        false => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_become_loopback_and_loopback_gets_its_names() {
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(default_s3_url(any, false), "http://127.0.0.1:9000");
        assert_eq!(default_s3_url("[::]:9000".parse().unwrap(), true), "https://127.0.0.1:9000");
        let console: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        assert_eq!(
            origins(console, false, &["https://c.example.com".into()]),
            ["http://127.0.0.1:9001", "http://localhost:9001", "http://[::1]:9001", "https://c.example.com"]
        );
        let public: SocketAddr = "192.0.2.7:9001".parse().unwrap();
        assert_eq!(origins(public, true, &[]), ["https://192.0.2.7:9001"]);
    }
}
