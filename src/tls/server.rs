//! The TLS side of `tessera serve`: the certificate the handshakes use, its
//! reload on SIGHUP, and the handshake of one accepted connection.
//!
//! The certificate sits behind a resolver (rustls `ResolvesServerCert`)
//! rather than in the `ServerConfig`: a reload swaps the pair for every
//! handshake that starts afterwards, while connections already up keep the
//! keys they negotiated, and no listener or config is rebuilt.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::{load_certified_key, provider, TlsError, ALPN_HTTP1};

/// What a plain HTTP client gets on the TLS port, as Go's servers answer it:
/// a readable reason instead of bytes that look like a broken connection.
const PLAIN_HTTP_REPLY: &[u8] = b"HTTP/1.0 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n\
This port speaks HTTPS: use https:// in the endpoint URL.\n";
/// How long the reply to a plain HTTP client waits for it to finish sending.
const LINGER: Duration = Duration::from_secs(1);

/// The TLS acceptor of `tessera serve`, and the files it reloads from.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    resolver: Arc<ReloadingCert>,
}

/// The certificate chain and key every new handshake gets, replaced as a
/// whole on reload (a reader never sees a chain with the other's key).
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

impl ReloadingCert {
    /// Reads both files again; on any error the pair served so far stays.
    fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load_certified_key(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

impl ServerTls {
    /// Loads the PEM certificate chain and private key; an unreadable or
    /// malformed file, or a key that is not the certificate's, is an error
    /// naming the file, so the server does not start with it.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let first = load_certified_key(cert, key)?;
        let resolver = Arc::new(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(first)),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(ServerTls { acceptor: TlsAcceptor::from(Arc::new(config)), resolver })
    }

    /// Reloads the certificate and key on every SIGHUP for the life of the
    /// process (`systemctl reload`, or after certbot renews). A failed reload
    /// is logged with the file at fault and the previous pair keeps serving.
    pub fn reload_on_sighup(&self) -> io::Result<()> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let resolver = self.resolver.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let files = resolver.clone();
                let (cert, key) = (files.cert.display().to_string(), files.key.display().to_string());
                match tokio::task::spawn_blocking(move || files.reload()).await {
                    Ok(Ok(())) => tracing::info!(%cert, %key, "TLS certificate reloaded"),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "TLS certificate not reloaded; still serving the previous one")
                    }
                    Err(e) => tracing::error!(error = %e, "TLS certificate reload did not finish"),
                }
            }
        });
        Ok(())
    }

    /// The TLS handshake of an accepted connection, run in the connection's
    /// own task (a slow client never holds up the accept loop) and bounded by
    /// `limit`: a client that connects and sends nothing, or sends its
    /// ClientHello a byte at a time, is dropped then. `wrap` puts the layers
    /// that belong under TLS around the TCP stream. A plain HTTP request gets
    /// a short 400 saying to use https://, then the connection is closed.
    pub async fn accept<S>(
        &self,
        tcp: TcpStream,
        limit: Duration,
        wrap: impl FnOnce(TcpStream) -> S,
    ) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake = async {
            if !starts_like_tls(&tcp).await? {
                refuse_plain_http(tcp).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP sent to the TLS port"));
            }
            let stream = self.acceptor.accept(wrap(tcp)).await?;
            log_session(&stream);
            Ok(stream)
        };
        match tokio::time::timeout(limit, handshake).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no TLS handshake within {limit:?}"))),
        }
    }
}

/// Whether the client's first byte may open TLS: a TLS connection starts
/// with a handshake record (content type 22, RFC 8446 section 5.1), a plain
/// HTTP request with the letters of its method. What is neither is left to
/// rustls to refuse.
async fn starts_like_tls(tcp: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await? {
        0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the TLS handshake")),
        _ => Ok(!first.iter().all(u8::is_ascii_alphabetic)),
    }
}

/// Answers a plain HTTP client with [`PLAIN_HTTP_REPLY`] and closes: after
/// our FIN its remaining request bytes are read and dropped for a moment
/// (a lingering close), since closing with unread data would send a reset
/// that can destroy the reply before the client reads it.
async fn refuse_plain_http(mut tcp: TcpStream) {
    if tcp.write_all(PLAIN_HTTP_REPLY).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left: usize = 64 * 1024;
        while let Ok(n @ 1..) = tcp.read(&mut sink).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// The protocol version and cipher suite of a new session, at debug level
/// (docs/performance.md quotes the suite negotiated in the TLS benchmark).
fn log_session<S>(stream: &TlsStream<S>) {
    let (_, session) = stream.get_ref();
    if let (Some(version), Some(suite)) = (session.protocol_version(), session.negotiated_cipher_suite()) {
        tracing::debug!(?version, cipher = ?suite.suite(), "TLS session established");
    }
}
