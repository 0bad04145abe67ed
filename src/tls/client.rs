//! HTTPS for Tessera's own S3 client (`tessera cp`, `ls`, `mb`, `rm`,
//! `bench`, and the admin commands that reach a running server).
//!
//! Which servers are trusted: for an endpoint the user names, the CA bundle
//! in `AWS_CA_BUNDLE` (the variable aws-cli and the SDKs read, so one setting
//! serves every client of a private CA), else the system's roots. For the
//! admin commands, which find the server through its `server-info` file on
//! the same machine, exactly the certificate in the server's `--tls-cert`
//! file: no CA or host name is involved, and a server reached on 127.0.0.1
//! with a certificate for its public name is still verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{load_certs, provider, TlsError};

/// Which server certificates a client accepts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Certificates that chain to `AWS_CA_BUNDLE`'s CAs, or else to the
    /// system's, for the host name of the endpoint.
    Roots,
    /// Exactly this certificate (the first of the server's chain file).
    Pinned(CertificateDer<'static>),
}

impl Trust {
    /// The certificate a server serves from `cert_file` (its first).
    pub fn pinned_to(cert_file: &Path) -> Result<Trust, TlsError> {
        let chain = load_certs(cert_file)?;
        chain.into_iter().next().map(Trust::Pinned).ok_or_else(|| TlsError::NoCertificate { path: cert_file.into() })
    }
}

/// A client config for TLS 1.2 or 1.3, trusting `trust`. It offers no ALPN
/// protocol: HTTP/1.1 is what a TLS connection without one carries, and
/// hyper-rustls refuses a config with ALPN already set.
pub fn config(trust: &Trust) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let config = match trust {
        Trust::Roots => builder.with_root_certificates(roots()?).with_no_client_auth(),
        Trust::Pinned(cert) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCert { cert: cert.clone(), provider }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// A config that trusts no certificate, for a client of a plain `http://`
/// endpoint whose connector still needs one: it is never used to connect.
pub fn refusing() -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions();
    Ok(builder.map_err(TlsError::Config)?.with_root_certificates(RootCertStore::empty()).with_no_client_auth())
}

/// `AWS_CA_BUNDLE`'s certificates, or the system's (rustls-native-certs,
/// which also honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
fn roots() -> Result<RootCertStore, TlsError> {
    roots_from(std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()).map(PathBuf::from).as_deref())
}

/// The CA certificates of `bundle`, or without one the system's: the roots
/// of the S3 client and of the metadata database's `--meta-ca`.
pub fn roots_from(bundle: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match bundle {
        Some(bundle) => {
            for cert in load_certs(bundle)? {
                roots.add(cert).map_err(|source| TlsError::Certificate { path: bundle.to_path_buf(), source })?;
            }
        }
        None => {
            // Unreadable entries of the system store are skipped, as curl does.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    match roots.is_empty() {
        true => Err(TlsError::NoRoots),
        false => Ok(roots),
    }
}

/// The name a certificate must carry for `host` (a DNS name or an IP
/// address, IPv6 in brackets as in a URL).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName(host.to_string()))
}

/// Accepts the one certificate it was given, with the handshake signatures
/// checked as usual (proof that the server holds its key).
#[derive(Debug)]
struct PinnedCert {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match end_entity.as_ref() == self.cert.as_ref() {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
