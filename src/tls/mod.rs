//! TLS with rustls (the `ring` provider, docs/dependencies.md says why):
//! `server` terminates `serve --tls-cert/--tls-key` connections and reloads
//! the pair on SIGHUP; `client` is the HTTPS side of the S3 client that
//! `tessera cp`, `bench` and the admin commands use.
//!
//! This file loads PEM files. Every error names the file it is about, so an
//! operator knows which of the two to fix.

pub mod client;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The protocol Tessera speaks inside TLS, announced with ALPN (RFC 7301):
/// HTTP/1.1 only, as on plain connections.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why a certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not valid PEM: {detail}", path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("{}: no certificate in it (a PEM `CERTIFICATE` section is expected)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{}: no private key in it (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section is expected)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("{}: the private key cannot be used: {source}", path.display())]
    Key { path: PathBuf, source: rustls::Error },
    #[error("{} does not hold the private key of the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: the certificate cannot be used: {source}", path.display())]
    Certificate { path: PathBuf, source: rustls::Error },
    #[error("no trusted CA certificates found: set AWS_CA_BUNDLE to a PEM file of the CAs to trust")]
    NoRoots,
    #[error("`{0}` is not a host name or IP address a certificate can be checked for")]
    ServerName(String),
    #[error("setting up TLS: {0}")]
    Config(rustls::Error),
}

/// The crypto provider of every TLS connection, server and client.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a whole file, the error naming it.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn pem_error(path: &Path, e: rustls_pki_types::pem::Error) -> TlsError {
    TlsError::Pem { path: path.to_path_buf(), detail: e.to_string() }
}

/// Every certificate of a PEM file, in order: for a server, its own
/// certificate first, then the intermediates that lead to the CA.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
    let certs = certs.map_err(|e| pem_error(path, e))?;
    match certs.is_empty() {
        true => Err(TlsError::NoCertificate { path: path.to_path_buf() }),
        false => Ok(certs),
    }
}

/// The first private key of a PEM file: PKCS#8 (`PRIVATE KEY`), PKCS#1
/// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoKey { path: path.to_path_buf() }),
        Err(e) => Err(pem_error(path, e)),
    }
}

/// The certificate chain and its private key, checked to belong together
/// (rustls compares the key's public half with the certificate's), so a
/// mismatched pair fails here and not in every client's handshake.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(load_key(key)?)
        .map_err(|source| TlsError::Key { path: key.to_path_buf(), source })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // A key type whose public half rustls cannot derive is not compared.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err(TlsError::Mismatch { cert: cert.to_path_buf(), key: key.to_path_buf() })
        }
        Err(source) => Err(TlsError::Certificate { path: cert.to_path_buf(), source }),
    }
}
