//! The `tessera` binary: parse the command line, open the store, serve.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tessera::admin::ServerInfo;
use tessera::config::{root_credentials, Cli, Command, ConsoleListen, CredentialsOrigin, LogFormat, ServeConfig};
use tessera::console::Console;
use tessera::s3::AppState;
use tessera::store::Store;
use tessera::transfer::Companion;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(config) => config.log_format,
        _ => LogFormat::Text,
    };
    init_logs(format);
    match cli.command {
        Command::Serve(config) => serve(config),
        Command::Bench(args) => bench(args),
        Command::Backup(args) => tessera::admin::backup(args),
        Command::User(command) => tessera::user_cli::run(command),
        Command::Stats(args) => tessera::stats_cli::run(args),
        Command::Scrub(args) => scrub(&args),
        Command::Cp(args) => cp(args),
        Command::Ls(args) => tessera::transfer::run_companion(Companion::Ls(args)),
        Command::Mb(args) => tessera::transfer::run_companion(Companion::Mb(args)),
        Command::Rm(args) => tessera::transfer::run_companion(Companion::Rm(args)),
        Command::Migrate(args) => tessera::meta_cli::migrate(args),
        Command::Restore(args) => tessera::meta_cli::restore(args),
    }
}

/// Logs to stderr, filtered by `TESSERA_LOG` (default `info`): text, in
/// colour only on a terminal, or one JSON object per line. Written directly:
/// a writer thread (tracing-appender) was measured and gained nothing on
/// 4 KiB GETs, and would lose the last lines before a crash.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}

/// Exits [`tessera::transfer::EXIT_INTERRUPTED`] when Ctrl-C paused the copy.
fn cp(args: tessera::transfer::CpArgs) -> anyhow::Result<()> {
    match tessera::transfer::run(args)? {
        tessera::transfer::Outcome::Done => Ok(()),
        tessera::transfer::Outcome::Interrupted => std::process::exit(tessera::transfer::EXIT_INTERRUPTED),
    }
}

/// Prints the report; exits 1 when anything is corrupt, 2 when the folder
/// could not be scrubbed.
fn scrub(args: &tessera::config::ScrubArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let scrubbed = match &args.meta {
        Some(meta) => tessera::meta_cli::scrub(meta, args.meta_ca.as_deref(), data),
        None => tessera::store::scrub::scrub_folder(data).map_err(anyhow::Error::new),
    };
    match scrubbed {
        Ok(report) => {
            print!("scrubbed {}\n{report}", data.display());
            std::io::stdout().flush()?;
            if !report.corrupt.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("tessera scrub: {}: {e:#}", data.display());
            std::process::exit(2);
        }
    }
}

/// Exits 1 when any request failed or any byte read back did not match.
fn bench(args: tessera::bench::BenchArgs) -> anyhow::Result<()> {
    if !tessera::bench::run(args)? {
        std::process::exit(1);
    }
    Ok(())
}

fn serve(config: ServeConfig) -> anyhow::Result<()> {
    limit_malloc_arenas();
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // The port first: a port in use must change nothing on disk.
        let listener =
            tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let console_listener = bind_console(&config).await?;
        let tls = load_tls(&config)?;
        // Over a shared metadata database, this process is one gateway of several.
        let (store, gateway) = match &config.meta {
            Some(meta) => {
                let gateway = tessera::meta_cli::open_gateway(&config, meta, listener.local_addr()?.port()).await?;
                (gateway.store.clone(), Some(Arc::new(gateway)))
            }
            None => {
                let store = open_embedded(&config)?;
                spawn_background_work(&config, &store);
                (store, None)
            }
        };
        let creds = root_credentials(&store.layout().credentials_path()).context("loading root credentials")?;
        let addr = listener.local_addr()?;
        let tls_cert = config.tls_cert.as_deref().map(std::path::absolute).transpose()?;
        let info = ServerInfo { listen: addr, region: config.region.clone(), tls_cert };
        info.announce(store.layout()).context("writing server-info")?;
        let layout = store.layout().clone();
        let closing = store.clone();
        let tls_on = config.tls_cert.is_some();
        let console_addr = console_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let console_origins =
            console_addr.map(|a| tessera::console::origins(a, tls_on, &config.console_origin)).unwrap_or_default();
        let state = Arc::new(AppState {
            store,
            region: config.region.clone(),
            domain: config.domain.clone(),
            access_key: creds.access_key.clone(),
            secret_key: creds.secret_key.clone(),
            body_timeout: config.body_timeout,
            metrics: Arc::new(tessera::metrics::Metrics::new(&closing)),
            metrics_token: config.metrics_token.clone(),
            scheme: if config.tls_cert.is_some() { "https" } else { "http" },
            console_origins,
        });
        let console =
            console_listener.map(|l| Ok::<_, anyhow::Error>((l, console_state(&config, &state, addr)?))).transpose()?;
        log_configuration(&config, addr);
        let mut out = std::io::stdout().lock();
        writeln!(out, "Access key: {}", creds.access_key)?;
        match creds.origin {
            CredentialsOrigin::Generated => writeln!(
                out,
                "Secret key: {}  (generated now and stored in {}; it is not printed again)",
                creds.secret_key,
                layout.credentials_path().display()
            )?,
            CredentialsOrigin::DataFolder => writeln!(
                out,
                "Secret key: stored in {} (shown when it was generated)",
                layout.credentials_path().display()
            )?,
            CredentialsOrigin::Environment => writeln!(out, "Secret key: from TESSERA_SECRET_KEY")?,
        }
        writeln!(out, "Region:     {}   Data: {}", config.region, config.data.display())?;
        writeln!(out, "Tessera listening on {}", info.endpoint())?;
        if let Some(console_addr) = console_addr {
            writeln!(out, "Console:    {}", tessera::console::console_url(console_addr, tls_on))?;
        }
        out.flush()?;
        drop(out);
        // One signal stops both listeners: the S3 one watches it, the console
        // is told through the channel.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let console_task = console.map(|(listener, console)| {
            let mut stopped = stopped.clone();
            let signal = async move {
                let _ = stopped.changed().await;
            };
            tokio::spawn(tessera::console::serve(listener, Arc::new(console), tls.clone(), signal))
        });
        let kept = gateway.clone();
        let signal = async move {
            // A gateway whose id another process took must stop too.
            let lost = async move {
                match kept {
                    Some(gateway) => gateway.lost().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown_signal() => {}
                () = lost => {}
            }
            let _ = stop.send(true);
        };
        tessera::server::serve(listener, state, tls, signal).await;
        if let Some(task) = console_task {
            let _ = task.await;
        }
        ServerInfo::withdraw(&layout);
        if let Some(gateway) = &gateway {
            gateway.release().await;
        }
        tokio::task::spawn_blocking(move || closing.close()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The store of the embedded (redb) backend in `--data`.
fn open_embedded(config: &ServeConfig) -> anyhow::Result<Arc<Store>> {
    Store::open_with(&config.data, config.accept_db_rollback).map_err(|e| {
        let context = format!("opening data folder {}", config.data.display());
        match e.io_kind() == Some(std::io::ErrorKind::PermissionDenied) {
            true => anyhow::Error::new(e).context(format!("{context} as {}", tessera::config::process_user())),
            false => anyhow::Error::new(e).context(context),
        }
    })
}

/// The embedded backend's background work: upload expiry, lifecycle,
/// content hashing and scrub.
fn spawn_background_work(config: &ServeConfig, store: &Arc<Store>) {
    tessera::store::spawn_upload_reaper(store.clone(), config.abort_incomplete_after);
    tessera::store::spawn_lifecycle_reaper(store.clone(), config.lifecycle_day);
    if !config.hash_after_idle.is_zero() {
        tessera::store::spawn_content_hasher(store.clone(), config.hash_after_idle);
    }
    if !config.scrub_interval.is_zero() {
        tessera::store::spawn_scrubber(store.clone(), config.scrub_interval, config.scrub_rate);
    }
}

/// The console's state: the S3 endpoint the page is told of, the origins.
fn console_state(
    config: &ServeConfig,
    state: &Arc<AppState>,
    s3_addr: std::net::SocketAddr,
) -> anyhow::Result<Console> {
    let tls = config.tls_cert.is_some();
    let s3_url = config.console_s3_url.clone().unwrap_or_else(|| tessera::console::default_s3_url(s3_addr, tls));
    let open = matches!(config.console, Some(ConsoleListen::At(a)) if !a.ip().is_loopback());
    if open && config.console_s3_url.is_none() {
        tracing::warn!(
            s3_url = %s3_url,
            "the console is open to other machines, whose browsers need the S3 endpoint's URL as they reach it: \
             set --console-s3-url (and --console-origin if they reach the console by a name)"
        );
    }
    if open && !tls {
        tracing::warn!(
            "the console is open to other machines over plain HTTP: access keys, secrets and session cookies \
             cross the network in clear; serve it with --tls-cert/--tls-key, behind an HTTPS proxy, or reach \
             it through an SSH tunnel"
        );
    }
    Console::new(state.clone(), &s3_url, tls).map_err(anyhow::Error::msg)
}

/// The console's listener: none with `--console off`; the address named,
/// which must be free; or, without the flag, the default address if it is
/// free (a busy default port only turns the console off, so that several
/// servers on one machine start as they did before the console existed).
async fn bind_console(config: &ServeConfig) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match config.console {
        Some(ConsoleListen::Off) => Ok(None),
        Some(ConsoleListen::At(addr)) => {
            let bound = tokio::net::TcpListener::bind(addr).await;
            Ok(Some(bound.with_context(|| format!("binding the console to {addr}"))?))
        }
        None => {
            let addr: std::net::SocketAddr = tessera::config::DEFAULT_CONSOLE.parse()?;
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => Ok(Some(listener)),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "the console's default address is busy: console off (--console ADDR)");
                    Ok(None)
                }
            }
        }
    }
}

/// The TLS certificate and key, read before the data folder is touched (a
/// bad file changes nothing on disk), and reloaded on every SIGHUP from then on.
fn load_tls(config: &ServeConfig) -> anyhow::Result<Option<tessera::tls::server::ServerTls>> {
    let Some((cert, key)) = config.tls_files() else { return Ok(None) };
    let tls = tessera::tls::server::ServerTls::load(cert, key).context("loading the TLS certificate")?;
    tls.reload_on_sighup().context("watching for SIGHUP (TLS certificate reload)")?;
    Ok(Some(tls))
}

/// The version and the effective configuration, secrets left out.
fn log_configuration(config: &ServeConfig, addr: std::net::SocketAddr) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %addr,
        data = %config.data.display(),
        region = %config.region,
        domain = config.domain.as_deref().unwrap_or(""),
        abort_incomplete_after = %humantime::format_duration(config.abort_incomplete_after),
        scrub_interval = %humantime::format_duration(config.scrub_interval),
        scrub_rate = config.scrub_rate,
        hash_after_idle = %humantime::format_duration(config.hash_after_idle),
        body_timeout = %humantime::format_duration(config.body_timeout),
        metrics_token = config.metrics_token.is_some(),
        tls = config.tls_cert.is_some(),
        console = ?config.console,
        tls_cert = %config.tls_cert.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
        accept_db_rollback = config.accept_db_rollback,
        "tessera starting"
    );
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// glibc gives every thread that allocates under contention an arena of its
/// own, up to 8 per core, and memory freed into one arena is not reused by
/// the others: with an upload, hashing, writer and reader thread per request
/// the server's RSS grew with every burst. One arena per core keeps it
/// bounded (the 1,000-part copy run: 71 -> 48 MiB peak) and allocation is
/// not what limits throughput (docs/performance.md). Called before any thread
/// starts; other C libraries have no such knob and need none.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets an allocator parameter; no thread is running yet.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Raises the soft limit on open files to the hard limit: every connection
/// holds a socket and every upload past the inline size a temp file too, and
/// the usual soft limit (1,024) would refuse connections long before memory
/// or threads run out. docs/reliability.md says what a limit supports.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open files limit");
            return;
        }
        let wanted = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        limit.rlim_cur < limit.rlim_max && libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
    };
    if raised {
        limit.rlim_cur = limit.rlim_max;
    }
    tracing::info!(open_files = limit.rlim_cur, hard = limit.rlim_max, "open files limit");
}
