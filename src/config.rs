//! Command line, environment and the root credentials. No globals: `main`
//! builds one [`ServeConfig`] and hands it down.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "An S3-compatible object storage gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 API.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeConfig),
    /// Measure an S3 endpoint (throughput, latency, small objects, listing) and this machine's limits.
    Bench(crate::bench::BenchArgs),
    /// Write a consistent backup of a data folder, from a running server (asked
    /// through its admin API) or a stopped one; with `--meta`, of gateways
    /// over PostgreSQL, beside them.
    Backup(crate::admin::BackupArgs),
    /// Check every blob of a stopped server's data folder (with `--meta`, of
    /// the folder gateways share, beside them) against its block checksums;
    /// exits 1 if any is corrupt, 2 if the check could not run.
    Scrub(ScrubArgs),
    /// Add, list, remove users or give them a new secret, on a stopped
    /// server's data folder or through a running server.
    #[command(subcommand)]
    User(crate::user_cli::UserCommand),
    /// What the store holds: objects, logical and stored bytes, and the
    /// deduplication ratio; of a stopped server's folder or a running server.
    Stats(crate::stats_cli::StatsArgs),
    /// Copy a file to or from an S3 endpoint (`tessera cp FILE s3://bucket/key`
    /// or the reverse): multipart and parallel, resumed when run again after
    /// an interruption, checked against the ETag.
    Cp(crate::transfer::CpArgs),
    /// List buckets, or the objects under `s3://bucket/prefix`.
    Ls(crate::transfer::LsArgs),
    /// Make a bucket: `tessera mb s3://bucket`.
    Mb(crate::transfer::MbArgs),
    /// Remove an object, or with `--recursive` every object under a prefix.
    Rm(crate::transfer::RmArgs),
    /// Create or upgrade the PostgreSQL metadata schema (`--meta URL`);
    /// running it again is harmless. See docs/scale-out.md.
    #[command(after_help = MIGRATE_HELP)]
    Migrate(crate::meta_cli::MigrateArgs),
    /// Load a backup of gateways over PostgreSQL (`tessera backup --meta`)
    /// into an empty database. A backup of a server over redb needs none:
    /// serve its folder.
    #[command(after_help = MIGRATE_HELP)]
    Restore(crate::meta_cli::RestoreArgs),
}

/// How log lines are written (`serve --log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The end of `tessera serve --help`: what is not a flag.
const SERVE_HELP: &str = "\
Root credentials:
  TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY (both, or neither) set the root key pair.
  Without them, the pair stored in DATA/root-credentials (mode 0600) is used; at the
  first start it is generated, stored there and printed once.

Environment:
  TESSERA_LOG            log filter (default `info`; e.g. `debug`, `tessera=debug`)
  TESSERA_BODY_TIMEOUT   same as --body-timeout
  TESSERA_METRICS_TOKEN  same as --metrics-token
  TESSERA_TLS_CERT       same as --tls-cert
  TESSERA_TLS_KEY        same as --tls-key
  TESSERA_CONSOLE        same as --console
  TESSERA_META           same as --meta
  TESSERA_META_PASSWORD  the metadata database's password, when --meta has none

TLS: with --tls-cert and --tls-key (both, or neither) the port speaks HTTPS only
(HTTP/1.1, TLS 1.2 and 1.3). SIGHUP re-reads both files: new connections get the
new certificate; if either file is bad, the error is logged and the previous
certificate stays in use.

Health and metrics (no signature needed): GET /_tessera/health/live,
/_tessera/health/ready (503 with the reason when writes would fail) and
/_tessera/metrics (Prometheus). One access line per request is logged at the
`info` level (target tessera::access).

More users: `tessera user add NAME --data DATA`. Docs: README.md, docs/.";

/// The end of `tessera migrate --help`.
pub const MIGRATE_HELP: &str = "\
The URL is a tokio-postgres connection string: postgres://USER[:PASSWORD]@HOST:PORT/DB
with options such as ?sslmode=disable|prefer|require (default prefer; with TLS the
server's certificate and host name are always verified, against --meta-ca or the
system's CAs). The password may instead be in TESSERA_META_PASSWORD. Tables go to the
first schema of the connection's search_path (created if missing), for example
?options=-c%20search_path%3Dtessera. Shown URLs have their password replaced by ***.";

#[derive(Debug, Clone, Args)]
pub struct ScrubArgs {
    /// Data folder of a stopped server; with `--meta`, the blob folder the
    /// gateways share (they may be running).
    #[arg(long, default_value = "./tessera-data")]
    pub data: PathBuf,
    /// The metadata database shared by gateways (`serve --meta`).
    #[arg(long, value_name = "URL", value_parser = parse_meta_url)]
    pub meta: Option<MetaUrl>,
    /// PEM file of the CAs that sign the metadata database's certificate
    /// (default: the system's CAs).
    #[arg(long, value_name = "FILE", requires = "meta")]
    pub meta_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on: `HOST:PORT`, `:PORT` for every interface, or
    /// a name such as `localhost:9000` (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Data folder: metadata database and blob files.
    #[arg(long, default_value = "./tessera-data")]
    pub data: PathBuf,
    /// The region this server answers for (SigV4 scopes must name it).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Enables virtual-hosted-style requests for `<bucket>.<domain>`.
    #[arg(long)]
    pub domain: Option<String>,
    /// Multipart uploads older than this are aborted in the background and
    /// their parts freed (e.g. `7d`, `36h`, `90s`).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub abort_incomplete_after: std::time::Duration,
    /// Time between background scrub passes, which read every blob and log
    /// corruption (the first starts after this or 10 minutes, whichever is
    /// sooner); `0s` turns the background scrub off.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub scrub_interval: std::time::Duration,
    /// Most bytes per second the background scrub reads (e.g. `16MiB`).
    #[arg(long, default_value = "16MiB", value_parser = crate::bench::units::parse_size)]
    pub scrub_rate: u64,
    /// Background hashing of stored bodies whose SHA-256 the client did not
    /// declare (so identical content is stored once) runs once no body
    /// write has arrived for this long; `0s` turns it off.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub hash_after_idle: std::time::Duration,
    /// A request body that sends no byte for this long is abandoned with
    /// `RequestTimeout` and its connection closed, freeing all it held.
    #[arg(long, env = "TESSERA_BODY_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub body_timeout: std::time::Duration,
    /// With it, `GET /_tessera/metrics` answers only requests with
    /// `Authorization: Bearer <token>`; without it, anyone who reaches the
    /// port may read the metrics.
    #[arg(long, env = "TESSERA_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate
    /// first, then any intermediates); needs --tls-key. Reloaded on SIGHUP.
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// The web console's address (`HOST:PORT`, `:PORT`, `localhost:PORT`),
    /// or `off`. Its own listener, so no console path can clash with a
    /// bucket name; HTTPS too when --tls-cert is given. Without the flag the
    /// default 127.0.0.1:9001 is tried, and a busy port only turns the
    /// console off (with a warning); a named address that cannot be bound
    /// stops the server, like --listen.
    #[arg(long, env = "TESSERA_CONSOLE", value_parser = parse_console, value_name = "ADDR|off")]
    pub console: Option<ConsoleListen>,
    /// The S3 endpoint URL the console's page sends its presigned requests
    /// to, as the browser reaches it (behind a reverse proxy, its public
    /// URL). Default: the scheme and address of --listen, 0.0.0.0 and ::
    /// replaced by 127.0.0.1.
    #[arg(long, value_name = "URL", value_parser = parse_origin_url)]
    pub console_s3_url: Option<String>,
    /// A further origin (`https://console.example.com`) the console is
    /// reached at, through a reverse proxy: the S3 listener answers its CORS
    /// requests like the console's own. Repeatable.
    #[arg(long, value_name = "URL", value_parser = parse_origin_url)]
    pub console_origin: Vec<String>,
    /// Log lines as text, or as one JSON object per line for collectors.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Serve a metadata database found older than the commits already
    /// acknowledged to clients (after a corrupted header or a lost write),
    /// instead of refusing to start. See docs/reliability.md.
    #[arg(long)]
    pub accept_db_rollback: bool,
    /// The length of a lifecycle "day": lifecycle rules count their Days in
    /// it. One real day; tests shorten it (e.g. `2s`) to see rules applied.
    #[arg(long, default_value = "1d", value_parser = positive_duration, hide = true)]
    pub lifecycle_day: std::time::Duration,
    /// Metadata in this PostgreSQL database instead of DATA/meta.redb
    /// (`postgres://USER@HOST:PORT/DB`; see `tessera migrate --help`), shared
    /// by every gateway that serves the same buckets; --data is then the
    /// blob folder they share (docs/scale-out.md).
    #[arg(long, env = "TESSERA_META", hide_env_values = true, value_name = "URL", value_parser = parse_meta_url)]
    pub meta: Option<MetaUrl>,
    /// PEM file of the CAs that sign the metadata database's certificate
    /// (default: the system's CAs).
    #[arg(long, value_name = "FILE", requires = "meta")]
    pub meta_ca: Option<PathBuf>,
    /// Most connections to the metadata database at once.
    #[arg(long, value_name = "N", default_value = "16", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub meta_pool: u16,
    /// This gateway's name among those sharing one metadata database
    /// (letters, digits, `-`, `_`); its own files are in DATA/gateways/ID.
    /// Default: this machine's name and the port. Only with --meta.
    #[arg(long, value_name = "ID", value_parser = parse_gateway_id, requires = "meta")]
    pub gateway_id: Option<String>,
    /// How long a blob file freed by a write or delete stays on disk before
    /// it is unlinked, over a shared metadata database: longer than any GET
    /// on another gateway may take, since it may have found the blob just
    /// before the delete. Only with --meta.
    #[arg(long, default_value = "1h", value_parser = positive_duration, requires = "meta")]
    pub unlink_grace: std::time::Duration,
    /// How old a blob file that no database row names (left by a gateway
    /// killed between writing it and committing its object) must be before
    /// it is unlinked: longer than any write's commit may take. Only with
    /// --meta.
    #[arg(long, default_value = "1h", value_parser = positive_duration, requires = "meta")]
    pub orphan_grace: std::time::Duration,
}

/// `--meta URL` as given. Its `Debug` form has the password redacted, so a
/// printed configuration never shows it; the URL is parsed when used.
#[derive(Clone, PartialEq, Eq)]
pub struct MetaUrl(pub String);

impl std::fmt::Debug for MetaUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetaUrl({})", crate::store::pg::redact(&self.0))
    }
}

impl std::fmt::Display for MetaUrl {
    /// The redacted form: what logs and messages show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::store::pg::redact(&self.0))
    }
}

/// Any non-empty text; the error never repeats the value (it may hold a password).
pub fn parse_meta_url(text: &str) -> Result<MetaUrl, String> {
    match text.trim().is_empty() {
        true => Err("an empty URL (postgres://USER@HOST:PORT/DB expected)".into()),
        false => Ok(MetaUrl(text.to_string())),
    }
}

/// 1 to 64 letters, digits, `-` or `_`: it names the gateway's temp folder.
fn parse_gateway_id(text: &str) -> Result<String, String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    match !text.is_empty() && text.len() <= 64 && text.chars().all(valid) {
        true => Ok(text.to_string()),
        false => Err("1 to 64 letters, digits, `-` or `_`".into()),
    }
}

impl ServeConfig {
    /// The certificate and key files when TLS is on (clap has checked that
    /// both or neither are given).
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }
}

/// `HOST:PORT` (an IP address or a name, resolved once; IPv4 first), or
/// `:PORT` for every interface, as Go servers such as MinIO accept it.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| format!("`{text}`: not a port"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    let addrs: Vec<SocketAddr> = text.to_socket_addrs().map_err(|e| format!("`{text}`: {e}"))?.collect();
    let v4 = addrs.iter().find(|a| a.is_ipv4());
    v4.or(addrs.first()).copied().ok_or_else(|| format!("`{text}`: the name has no address"))
}

/// Where the console listens (`serve --console`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleListen {
    Off,
    At(SocketAddr),
}

/// The console's default address, tried when `--console` is not given.
pub const DEFAULT_CONSOLE: &str = "127.0.0.1:9001";

/// `off`, or an address as `--listen` takes it.
fn parse_console(text: &str) -> Result<ConsoleListen, String> {
    match text.trim() {
        "off" => Ok(ConsoleListen::Off),
        addr => parse_listen(addr).map(ConsoleListen::At),
    }
}

/// An `http://` or `https://` URL with a host and no path, written without
/// a trailing slash (the form an `Origin` header has). A path is refused:
/// S3 clients, the page included, address buckets from the root.
fn parse_origin_url(text: &str) -> Result<String, String> {
    let uri: http::Uri = text.parse().map_err(|e| format!("`{text}`: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    match (scheme_ok, uri.authority(), bare) {
        (true, Some(authority), true) => Ok(format!("{}://{authority}", uri.scheme_str().unwrap_or("http"))),
        _ => Err(format!("`{text}`: not an http:// or https:// URL with a host and no path")),
    }
}

/// A humantime duration (`30s`, `2m`) greater than zero.
fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// The root user's key pair, and where it came from.
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub origin: CredentialsOrigin,
}

/// Where the root credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsOrigin {
    Environment,
    /// The data folder's file, written at an earlier start.
    DataFolder,
    /// Generated now and written to the data folder: the only time the
    /// secret is printed.
    Generated,
}

/// `TESSERA_ACCESS_KEY` and `TESSERA_SECRET_KEY` if both are set (only one
/// is an error); otherwise the pair stored in the data folder (a file that
/// is not exactly an access key line and a secret line is an error, never
/// replaced); otherwise a new pair, stored there (0600, never overwritten).
pub fn root_credentials(path: &Path) -> io::Result<RootCredentials> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("TESSERA_ACCESS_KEY"), var("TESSERA_SECRET_KEY")) {
        (Some(access_key), Some(secret_key)) => {
            return Ok(RootCredentials { access_key, secret_key, origin: CredentialsOrigin::Environment })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid("set both TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY, or neither".into()))
        }
        (None, None) => {}
    }
    match fs::read_to_string(path) {
        Ok(text) => parse_credentials(&text).ok_or_else(|| {
            invalid(format!(
                "{} is not a credentials file (an access key line, then a secret key line); fix or remove it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => generate_credentials(path),
        Err(e) => Err(e),
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Exactly two non-empty lines without inner spaces: access key, secret.
fn parse_credentials(text: &str) -> Option<RootCredentials> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let valid = |s: &&str| !s.chars().any(char::is_whitespace);
    match lines.as_slice() {
        [access, secret] if valid(access) && valid(secret) => Some(RootCredentials {
            access_key: access.to_string(),
            secret_key: secret.to_string(),
            origin: CredentialsOrigin::DataFolder,
        }),
        _ => None,
    }
}

/// A new pair, made durable and then published with `link` (a file
/// appearing meanwhile is never overwritten). Two servers starting at once
/// on a fresh folder (gateways sharing it) both end with the winner's pair:
/// the loser finds the file complete, since `link` shows it only whole.
fn generate_credentials(path: &Path) -> io::Result<RootCredentials> {
    let creds = RootCredentials {
        access_key: random_text(20, ACCESS_ALPHABET)?,
        secret_key: new_secret()?,
        origin: CredentialsOrigin::Generated,
    };
    let draft = path.with_extension(format!("new-{}", random_text(12, ACCESS_ALPHABET)?));
    let published = write_draft(&draft, &creds).and_then(|()| fs::hard_link(&draft, path));
    let _ = fs::remove_file(&draft);
    match published {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return root_credentials(path),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(creds)
}

fn write_draft(draft: &Path, creds: &RootCredentials) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(draft)?;
    writeln!(file, "{}\n{}", creds.access_key, creds.secret_key)?;
    file.sync_all()
}

/// A new user's record: a fresh key pair (20 and 40 characters, as AWS's)
/// and a canonical id (64 hex digits, as S3's).
pub fn new_user(name: &str, email: Option<String>) -> io::Result<crate::store::users::UserRecord> {
    let mut id = [0u8; 32];
    getrandom::getrandom(&mut id).map_err(io::Error::other)?;
    Ok(crate::store::users::UserRecord {
        name: name.to_string(),
        access_key: random_text(20, ACCESS_ALPHABET)?,
        secret_key: new_secret()?,
        canonical_id: hex::encode(id),
        email,
        created_ms: crate::store::now_ms(),
    })
}

/// A new secret access key.
pub fn new_secret() -> io::Result<String> {
    random_text(40, SECRET_ALPHABET)
}

const ACCESS_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[allow(clippy::indexing_slicing, reason = "a value modulo the alphabet length indexes the alphabet")]
fn random_text(len: usize, alphabet: &[u8]) -> io::Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
    // Both alphabets divide 256 unevenly only slightly (36) or not at all (64):
    // the bias of the 36-letter access key id is irrelevant, it is not a secret.
    Ok(bytes.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect())
}

/// The user this process runs as, for messages about permissions:
/// `uid 1000 (alice)`.
pub fn process_user() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut entry = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to memory owned here and live for the call;
    // `buf.len()` is its size. On success `found` points to `entry`, whose
    // strings point into `buf`, both still alive when read below.
    let name = unsafe {
        let rc = libc::getpwuid_r(uid, entry.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut found);
        match rc == 0 && !found.is_null() {
            true => Some(std::ffi::CStr::from_ptr((*found).pw_name).to_string_lossy().into_owned()),
            false => None,
        }
    };
    match name {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_starting_together_share_one_generated_pair() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("root-credentials");
        let starters: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || generate_credentials(&path).expect("credentials"))
            })
            .collect();
        let pairs: Vec<RootCredentials> = starters.into_iter().map(|t| t.join().expect("thread")).collect();
        let generated = pairs.iter().filter(|p| p.origin == CredentialsOrigin::Generated).count();
        assert_eq!(generated, 1, "exactly one starter generates the pair");
        assert!(pairs.iter().all(|p| p.access_key == pairs[0].access_key && p.secret_key == pairs[0].secret_key));
        let names: Vec<_> = fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("root-credentials")], "no draft is left behind");
        assert_eq!(
            parse_credentials(&fs::read_to_string(&path).expect("read")).map(|p| p.access_key),
            Some(pairs[0].access_key.clone())
        );
    }

    #[test]
    fn console_addresses_and_origin_urls() {
        assert_eq!(parse_console("off"), Ok(ConsoleListen::Off));
        assert_eq!(parse_console(":9001"), Ok(ConsoleListen::At(SocketAddr::from(([0, 0, 0, 0], 9001)))));
        assert_eq!(parse_console("127.0.0.1:9001"), Ok(ConsoleListen::At(SocketAddr::from(([127, 0, 0, 1], 9001)))));
        assert!(parse_console("nonsense").is_err());
        assert_eq!(parse_origin_url("https://s3.example.com/").as_deref(), Ok("https://s3.example.com"));
        assert_eq!(parse_origin_url("http://localhost:9000").as_deref(), Ok("http://localhost:9000"));
        assert!(parse_origin_url("https://s3.example.com/prefix").is_err(), "a path");
        assert!(parse_origin_url("ftp://s3.example.com").is_err());
        assert!(parse_origin_url("s3.example.com").is_err());
    }
}
