//! TLS to the metadata database, by the URL's `sslmode` as tokio-postgres
//! parses it: `disable` never, `prefer` when the server offers it,
//! `require` always. Whenever TLS is used, rustls verifies the chain and
//! the host name (libpq's `verify-full`): Tessera has no "encrypted but
//! unverified" mode. The CAs are `--meta-ca FILE` or the system's roots,
//! loaded as the S3 client loads them (`crate::tls::client`); a URL option
//! such as `sslrootcert=` is refused by tokio-postgres, hence the flag.

use std::path::Path;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{describe, MetaTarget, PgError};
use crate::tls::TlsError;

/// How connections are made: plain, or TLS with a verifying rustls config.
#[derive(Clone)]
pub enum Connector {
    Plain,
    Rustls(MakeRustlsConnect),
}

impl Connector {
    /// The connector for `target`'s `sslmode`, trusting the CAs in `ca` or
    /// else the system's. With `prefer` and no CA to be found, connections
    /// go without TLS (what `prefer` allows anyway), with a warning.
    pub fn for_target(target: &MetaTarget, ca: Option<&Path>) -> Result<Connector, PgError> {
        let mode = target.ssl_mode();
        if mode == SslMode::Disable {
            return Ok(Connector::Plain);
        }
        match crate::tls::client::roots_from(ca) {
            Ok(roots) => Ok(Connector::Rustls(MakeRustlsConnect::new(client_config(roots)?))),
            Err(TlsError::NoRoots) if mode == SslMode::Prefer => {
                tracing::warn!(url = %target.shown, "no CA certificates found: sslmode=prefer connects without TLS (give --meta-ca FILE)");
                Ok(Connector::Plain)
            }
            Err(TlsError::NoRoots) => Err(PgError::NoRoots),
            Err(e) => Err(e.into()),
        }
    }

    /// A new connection to `target`; its protocol task runs on the current
    /// tokio runtime until the client is dropped or the socket fails.
    pub async fn connect(&self, target: &MetaTarget) -> Result<Client, PgError> {
        match self {
            Connector::Plain => connect_with(target, NoTls).await,
            Connector::Rustls(tls) => connect_with(target, tls.clone()).await,
        }
    }

    /// Whether connections may use TLS (for the log line at start-up).
    pub fn uses_tls(&self) -> bool {
        matches!(self, Connector::Rustls(_))
    }
}

async fn connect_with<T>(target: &MetaTarget, tls: T) -> Result<Client, PgError>
where
    T: MakeTlsConnect<Socket> + Send,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = target
        .config
        .connect(tls)
        .await
        .map_err(|e| PgError::Connect { url: target.shown.clone(), detail: describe(&e) })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %describe(&e), "metadata database connection ended");
        }
    });
    Ok(client)
}

/// TLS 1.2 or 1.3 with the ring provider, as every other TLS connection of
/// Tessera's, verifying against `roots` (chain and host name, by rustls).
fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, PgError> {
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> MetaTarget {
        MetaTarget::parse(url, None).unwrap()
    }

    fn ca_file(dir: &Path) -> std::path::PathBuf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["db.test".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let path = dir.join("ca.pem");
        std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
        path
    }

    #[test]
    fn sslmode_disable_never_uses_tls() {
        let missing = Path::new("/nonexistent/ca.pem");
        let connector = Connector::for_target(&target("postgres://db/x?sslmode=disable"), Some(missing)).unwrap();
        assert!(!connector.uses_tls());
    }

    #[test]
    fn require_and_prefer_verify_with_the_given_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca_file(dir.path());
        for url in ["postgres://db/x?sslmode=require", "postgres://db/x"] {
            assert!(Connector::for_target(&target(url), Some(&ca)).unwrap().uses_tls(), "{url}");
        }
    }

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let e =
            Connector::for_target(&target("postgres://db/x?sslmode=require"), Some(Path::new("/nonexistent/ca.pem")));
        let text = e.err().unwrap().to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    }
}
