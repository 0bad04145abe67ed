//! The admin side of the binary: the `DATA/server-info` file through which
//! a running server can be found, and `tessera backup`.
//!
//! redb locks `meta.redb` while a server runs, so a second process cannot
//! read it. `tessera backup` therefore first tries to open the database
//! itself (a stopped server: an offline backup); if a server holds the lock,
//! it reads that server's address from `server-info` and asks it, with a
//! request signed by the root credentials, to write the backup
//! (`s3/admin.rs`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use http::Method;

use crate::bench::client::{read_doc, Request, S3};
use crate::bench::xml::texts;
use crate::config::root_credentials;
use crate::s3::admin::BACKUP_PATH;
use crate::store::layout::Layout;
use crate::store::{backup_offline, BackupError, BackupReport, Store};
use crate::tls::client::Trust;

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Data folder to back up, of a running or a stopped server.
    #[arg(long, default_value = "./tessera-data")]
    pub data: PathBuf,
    /// Folder to write the backup into; it must not exist or be empty. A
    /// running server writes it, so it is a path on the server's machine.
    #[arg(long)]
    pub out: PathBuf,
    /// The metadata database of gateways (`serve --meta`): back up its
    /// tables and the blob files of `--data`, the folder they share, beside
    /// running gateways. Load the backup with `tessera restore`.
    #[arg(long, value_name = "URL", value_parser = crate::config::parse_meta_url)]
    pub meta: Option<crate::config::MetaUrl>,
    /// PEM file of the CAs that sign the metadata database's certificate
    /// (default: the system's CAs).
    #[arg(long, value_name = "FILE", requires = "meta")]
    pub meta_ca: Option<PathBuf>,
}

/// What a running server writes into its data folder at start and removes
/// at a clean stop: where to reach it, which region to sign for, and with
/// TLS on, its certificate file (the one certificate the admin commands
/// trust: see `tls::client`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    pub listen: SocketAddr,
    pub region: String,
    /// `--tls-cert`, made absolute: the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
}

impl ServerInfo {
    /// Writes `server-info` (temp file and rename: a reader never sees half).
    pub fn announce(&self, layout: &Layout) -> io::Result<()> {
        let path = layout.server_info_path();
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        writeln!(file, "listen={}\nregion={}\npid={}", self.listen, self.region, std::process::id())?;
        writeln!(file, "scheme={}", self.scheme())?;
        if let Some(cert) = &self.tls_cert {
            writeln!(file, "tls_cert={}", cert.display())?;
        }
        std::fs::rename(tmp, path)
    }

    /// Removes `server-info` (clean stop).
    pub fn withdraw(layout: &Layout) {
        let _ = std::fs::remove_file(layout.server_info_path());
    }

    pub fn read(layout: &Layout) -> anyhow::Result<ServerInfo> {
        let path = layout.server_info_path();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(str::trim);
        let listen = field("listen").and_then(|a| a.parse().ok()).map(reachable);
        let tls_cert = field("tls_cert").map(PathBuf::from);
        match (listen, field("region")) {
            (Some(listen), Some(region)) => Ok(ServerInfo { listen, region: region.to_string(), tls_cert }),
            _ => bail!("{} is malformed", path.display()),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `http://ADDR`, or `https://ADDR` with TLS on.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.listen)
    }

    /// The certificates a client of this server accepts: with TLS, exactly
    /// the one in its certificate file (read now, so a reloaded one is seen).
    fn trust(&self) -> anyhow::Result<Trust> {
        match &self.tls_cert {
            Some(cert) => Trust::pinned_to(cert).context("reading the running server's TLS certificate"),
            None => Ok(Trust::Roots),
        }
    }
}

/// A server listening on every address (`0.0.0.0`, `[::]`) is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, listen.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

/// `tessera backup`: from the database of gateways with `--meta`; else
/// offline when the redb database is free, or through the server holding it.
pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let out = std::path::absolute(&args.out).context("resolving --out")?;
    let (report, how) = match &args.meta {
        Some(meta) => {
            let report = crate::meta_cli::backup(meta, args.meta_ca.as_deref(), &args.data, &out)?;
            (report, format!("from the database at {meta}"))
        }
        None => backup_of_redb(&args.data, &out)?,
    };
    println!(
        "Backup of {} written to {} ({how}): {} objects, {} blob files ({} hard-linked), {} bytes, {:.2} s",
        args.data.display(),
        out.display(),
        report.objects,
        report.blobs,
        report.linked,
        report.bytes,
        report.seconds
    );
    Ok(())
}

/// Offline when the database is free, else through the server holding it;
/// the report and how it was taken.
fn backup_of_redb(data: &Path, out: &Path) -> anyhow::Result<(BackupReport, String)> {
    if Layout::existing(data).is_shared_by_gateways() {
        bail!("{} is the folder of gateways over PostgreSQL: give --meta URL, the database they use", data.display());
    }
    Ok(match backup_offline(data, out) {
        Ok(report) => (report, "offline".to_string()),
        Err(BackupError::Locked) => {
            let info = ServerInfo::read(&Layout::existing(data))
                .context("a server holds the database, but its address is unknown")?;
            let report = through_server(data, &info, out)?;
            (report, format!("by the server at {}", info.listen))
        }
        Err(e) => return Err(anyhow!(e).context("backup failed")),
    })
}

/// Asks the running server to write the backup, signed as root.
fn through_server(data: &Path, info: &ServerInfo, out: &Path) -> anyhow::Result<BackupReport> {
    let out = out.to_str().ok_or_else(|| anyhow!("--out must be valid UTF-8 to be sent to the server"))?;
    let doc = ask_server(data, info, Method::POST, BACKUP_PATH, &[("out", out.to_string())])?;
    parse_report(&doc)
}

/// Sends one admin request (`path` under `/_tessera/`) to the server that
/// holds `data`, signed with the root credentials; returns the reply
/// document, or the server's refusal as an error.
pub fn ask_server(
    data: &Path,
    info: &ServerInfo,
    method: Method,
    path: &str,
    query: &[(&'static str, String)],
) -> anyhow::Result<String> {
    let creds_path = Layout::existing(data).credentials_path();
    // `root_credentials` generates a pair when it finds none: never here.
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let from_env = set("TESSERA_ACCESS_KEY") && set("TESSERA_SECRET_KEY");
    if !from_env && !creds_path.is_file() {
        bail!("no root credentials: set TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY, or keep {}", creds_path.display());
    }
    let creds = root_credentials(&creds_path).context("loading root credentials")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let trust = info.trust()?;
        let client = S3::with_trust(&info.endpoint(), &creds.access_key, &creds.secret_key, &info.region, &trust)?;
        let path = path.trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let mut request = Request::new("Admin", method, bucket, Some(key));
        for (name, value) in query {
            request = request.query(name, value.clone());
        }
        let response = client.send(request).await?;
        let status = response.status();
        let doc = read_doc("Admin", response.into_body()).await?;
        if !status.is_success() {
            let field = |name| texts(&doc, name).next().unwrap_or_default();
            bail!("the server at {} refused: {} {}: {}", info.listen, status, field("Code"), field("Message"));
        }
        Ok(doc)
    })
}

fn parse_report(doc: &str) -> anyhow::Result<BackupReport> {
    let field = |name| texts(doc, name).next().ok_or_else(|| anyhow!("reply lacks <{name}>: {doc}"));
    let number = |name| field(name)?.parse::<u64>().with_context(|| format!("<{name}> in reply"));
    Ok(BackupReport {
        objects: number("Objects")?,
        blobs: number("Blobs")?,
        linked: number("Linked")?,
        bytes: number("Bytes")?,
        seconds: field("Seconds")?.parse().context("<Seconds> in reply")?,
    })
}

/// The running server that holds `data`'s database, if one does.
pub fn server_of(data: &Path) -> anyhow::Result<Option<ServerInfo>> {
    let layout = Layout::existing(data);
    let path = layout.db_path();
    if !path.is_file() {
        return gateway_of(data);
    }
    match redb::Database::open(&path) {
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            let info = ServerInfo::read(&layout).context("a server holds the database, but its address is unknown")?;
            Ok(Some(info))
        }
        // Free (closed again as `_` drops), or an error the store's own open reports better.
        _ => Ok(None),
    }
}

/// A running gateway of a folder shared by gateways over a metadata
/// database (docs/scale-out.md), or `None` for a folder without gateways.
/// Such a folder has no database of its own to open: without a running
/// gateway there is nothing to ask. Gateways are tried in the order of
/// their ids.
fn gateway_of(data: &Path) -> anyhow::Result<Option<ServerInfo>> {
    let Ok(gateways) = std::fs::read_dir(data.join("gateways")) else { return Ok(None) };
    let mut gateways: Vec<PathBuf> = gateways.flatten().map(|gateway| gateway.path()).collect();
    gateways.sort();
    for gateway in gateways {
        // A gateway killed with kill -9 leaves its server-info behind: ask
        // only one that answers.
        match ServerInfo::read(&Layout::existing(&gateway)) {
            Ok(info) if answers(&info) => return Ok(Some(info)),
            _ => continue,
        }
    }
    bail!(
        "{} is shared by gateways over a metadata database and none of them runs: start one \
         (tessera serve --meta URL --data {}) and run this again",
        data.display(),
        data.display()
    )
}

/// Whether something listens at the server's address.
fn answers(info: &ServerInfo) -> bool {
    std::net::TcpStream::connect_timeout(&info.listen, std::time::Duration::from_secs(2)).is_ok()
}

/// The data folder an administration command works on, and how to reach
/// its metadata: a stopped server's redb file, the running server that
/// holds it, or with `--meta` a shared database directly (no gateway need
/// run, docs/scale-out.md).
#[derive(Debug, Clone, Args)]
pub struct DataFolder {
    /// Data folder of a stopped or a running server (with `--meta`, the
    /// folder the gateways share).
    #[arg(long, default_value = "./tessera-data")]
    pub data: PathBuf,
    /// The metadata database of gateways (`serve --meta`): change or read
    /// it directly, running gateways or not.
    #[arg(long, value_name = "URL", value_parser = crate::config::parse_meta_url)]
    pub meta: Option<crate::config::MetaUrl>,
    /// PEM file of the CAs that sign the metadata database's certificate
    /// (default: the system's CAs).
    #[arg(long, value_name = "FILE", requires = "meta")]
    pub meta_ca: Option<PathBuf>,
}

impl DataFolder {
    /// The running server to ask, if the metadata is only reachable through
    /// one (never with `--meta`).
    pub fn server(&self) -> anyhow::Result<Option<ServerInfo>> {
        match self.meta {
            Some(_) => Ok(None),
            None => server_of(&self.data),
        }
    }

    /// Runs `change` on the store itself: the shared database with
    /// `--meta`, else the stopped server's folder.
    pub fn offline<T>(&self, change: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
        match &self.meta {
            Some(meta) => crate::meta_cli::with_metadata_store(meta, self.meta_ca.as_deref(), &self.data, change),
            None => offline(&self.data, change),
        }
    }
}

/// Runs `change` on the data folder of a stopped server.
pub fn offline<T>(data: &Path, change: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let store = Store::open(data).with_context(|| format!("opening data folder {}", data.display()))?;
    let done = change(&store);
    store.close();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_round_trips_and_wildcards_become_loopback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::existing(dir.path());
        for (listen, expected) in
            [("127.0.0.1:9000", "127.0.0.1:9000"), ("0.0.0.0:9001", "127.0.0.1:9001"), ("[::]:9002", "[::1]:9002")]
        {
            let info = ServerInfo { listen: listen.parse().expect("addr"), region: "eu-west-3".into(), tls_cert: None };
            info.announce(&layout).expect("announce");
            let read = ServerInfo::read(&layout).expect("read");
            assert_eq!((read.listen, read.region.as_str()), (expected.parse().expect("addr"), "eu-west-3"));
            assert_eq!(read.endpoint(), format!("http://{expected}"));
        }
        let tls_cert = Some(PathBuf::from("/etc/tessera/cert.pem"));
        let info = ServerInfo { listen: "127.0.0.1:9443".parse().expect("addr"), region: "r".into(), tls_cert };
        info.announce(&layout).expect("announce");
        let read = ServerInfo::read(&layout).expect("read");
        assert_eq!((read.endpoint().as_str(), read.tls_cert), ("https://127.0.0.1:9443", info.tls_cert));
        ServerInfo::withdraw(&layout);
        assert!(ServerInfo::read(&layout).is_err());
    }
}
