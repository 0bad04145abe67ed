//! `--meta URL`: parsed as tokio-postgres parses it (`postgres://` URLs and
//! `key=value` strings alike), with the password from the URL or else from
//! `TESSERA_META_PASSWORD`, and a redacted form for every log line and
//! error message. tokio-postgres has no `PGPASSWORD` of its own.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::Config;

use super::{describe, redact, PgError};

/// The environment variable that holds the password when the URL has none.
pub const PASSWORD_VAR: &str = "TESSERA_META_PASSWORD";

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout=`): an unreachable host is reported, not waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A metadata database to connect to.
#[derive(Clone)]
pub struct MetaTarget {
    pub config: Config,
    /// The URL as given, its password replaced by `***`.
    pub shown: String,
}

impl std::fmt::Debug for MetaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaTarget").field("url", &self.shown).finish()
    }
}

impl MetaTarget {
    /// Parses `url`; `env_password` (the value of [`PASSWORD_VAR`]) is used
    /// when the URL carries no password.
    pub fn parse(url: &str, env_password: Option<String>) -> Result<MetaTarget, PgError> {
        let shown = redact(url);
        let mut config =
            Config::from_str(url).map_err(|e| PgError::Url { url: shown.clone(), detail: describe(&e) })?;
        if config.get_hosts().is_empty() {
            let detail = "no host (postgres://USER@HOST:PORT/DB)".to_string();
            return Err(PgError::Url { url: shown, detail });
        }
        if config.get_password().is_none() {
            if let Some(password) = env_password.filter(|p| !p.is_empty()) {
                config.password(password);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tessera");
        }
        Ok(MetaTarget { config, shown })
    }

    /// [`MetaTarget::parse`] with the password variable read from the
    /// environment.
    pub fn from_env(url: &str) -> Result<MetaTarget, PgError> {
        MetaTarget::parse(url, std::env::var(PASSWORD_VAR).ok())
    }

    /// Whether a connection will use TLS: never, if the server offers it,
    /// or always (the URL's `sslmode`, tokio-postgres's default `prefer`).
    pub fn ssl_mode(&self) -> SslMode {
        self.config.get_ssl_mode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_from_the_environment_only_when_the_url_has_none() {
        let from_env = MetaTarget::parse("postgres://u@db/x", Some("envpw".into())).unwrap();
        assert_eq!(from_env.config.get_password(), Some(&b"envpw"[..]));
        let from_url = MetaTarget::parse("postgres://u:urlpw@db/x", Some("envpw".into())).unwrap();
        assert_eq!(from_url.config.get_password(), Some(&b"urlpw"[..]));
        assert_eq!(from_url.shown, "postgres://u:***@db/x");
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let e = MetaTarget::parse("postgres://u:topsecret@db:notaport/x", None).unwrap_err().to_string();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("u:***@"), "{e}");
        let e = MetaTarget::parse("postgres://u:topsecret@/x", None).unwrap_err().to_string();
        assert!(!e.contains("topsecret"), "{e}");
    }

    #[test]
    fn sslmode_is_read_from_the_url() {
        let mode = |url: &str| MetaTarget::parse(url, None).unwrap().ssl_mode();
        assert_eq!(mode("postgres://db/x"), SslMode::Prefer);
        assert_eq!(mode("postgres://db/x?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://db/x?sslmode=require"), SslMode::Require);
    }
}
