//! Running the server as an operator does (issue 15): the forms `--listen`
//! accepts, what a failed start leaves behind and says, and `serve --help`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_reads, pattern, Req, Server, ACCESS_KEY, SECRET_KEY};

/// `tessera serve` with the test keys (and the suite's backend), run to its
/// exit (a start that fails).
fn serve_fails(listen: &str, data: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", listen, "--data"])
        .arg(data)
        .args(common::suite_backend_args(data, &[]))
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the start should fail: {}", String::from_utf8_lossy(&out.stdout));
    out
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn listen_accepts_a_bare_port_and_a_host_name() {
    for form in [":{port}", "localhost:{port}"] {
        let dir = tempfile::tempdir().unwrap();
        let port = port_of(&common::free_addr());
        let listen = form.replace("{port}", &port.to_string());
        let server = Server::start_on(&listen, dir.path());
        let c = common::Client::new(&format!("127.0.0.1:{port}"));
        assert_eq!(c.send(Req::new("PUT", "/listen-form")).status, 200, "--listen {listen}");
        drop(server);
    }
}

#[test]
fn a_port_in_use_changes_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let data = dir.path().join("data");
    let out = serve_fails(&taken.local_addr().unwrap().to_string(), &data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(!data.exists(), "the data folder was created before the port was bound");
}

/// Waits until `dir` holds a file (an upload's temp file).
fn wait_for_a_file(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(dir).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "no file appeared in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_server_on_the_same_folder_says_so_and_spares_the_first_ones_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/shared")).status, 200);
    let body = pattern(4 << 20, 1);
    let (first, rest) = body.split_at(1 << 20);
    let mut upload = c.send_partial(Req::new("PUT", "/shared/k").body(first), body.len());
    wait_for_a_file(&common::tmp_dir(dir.path()));

    let out = serve_fails("127.0.0.1:0", dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = match common::on_postgres() {
        // Gateways share a folder, each under an id of its own: this one
        // claimed the first one's id, and with it its temp folder.
        true => "is in use by the running gateway",
        false => "another Tessera is probably running on this data folder",
    };
    assert!(stderr.contains(why), "{stderr}");

    upload.write_all(rest).unwrap();
    let resp = common::read_response(&mut upload, false);
    assert_eq!(resp.status, 200, "the first server's upload in progress survives: {}", resp.text());
    assert_reads(&c, "/shared/k", &body);
}

/// `cmd` run as an unprivileged user when this test runs as root (root
/// ignores permissions), else as is.
fn unprivileged(mut cmd: Command) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return cmd;
    }
    let mut wrapped = Command::new("setpriv");
    wrapped.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(cmd.get_program()).args(cmd.get_args());
    wrapped.envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let _ = cmd.stdout(Stdio::null());
    wrapped
}

#[test]
fn a_data_folder_it_may_not_write_is_named_with_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = locked.join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(&data).env("RUST_BACKTRACE", "0");
    let out = unprivileged(cmd).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(stderr.contains(&data.display().to_string()) && stderr.contains(" as uid "), "{stderr}");
}

#[test]
fn serve_help_names_the_environment_and_the_credentials_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in ["TESSERA_ACCESS_KEY", "TESSERA_SECRET_KEY", "root-credentials", "TESSERA_LOG"] {
        assert!(help.contains(needle), "{needle} missing from serve --help:\n{help}");
    }
}

/// A server logging at `info` into `log` (stderr), with extra `serve` flags.
struct Logged {
    child: std::process::Child,
    addr: String,
}

impl Logged {
    /// SIGTERM, and wait: the log lines still queued are written at exit.
    fn stop(mut self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_logged(data: &Path, log: &Path, extra: &[&str]) -> Logged {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .args(common::suite_backend_args(data, extra))
        .env("TESSERA_ACCESS_KEY", ACCESS_KEY)
        .env("TESSERA_SECRET_KEY", SECRET_KEY)
        .env("TESSERA_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server exited").unwrap();
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Logged { child, addr }
}

/// An unsigned GET (or HEAD) of `path`, with extra headers.
fn probe(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> common::Response {
    common::Client::new(addr).send_raw(method, path, headers, b"")
}

#[test]
fn health_probes_answer_without_a_signature_and_readiness_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let live = probe(&server.addr, "GET", "/_tessera/health/live", &[]);
    assert_eq!((live.status, live.text().as_str()), (200, "live\n"));
    let ready = probe(&server.addr, "GET", "/_tessera/health/ready", &[]);
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    assert_eq!(probe(&server.addr, "HEAD", "/_tessera/health/ready", &[]).status, 200);
    // Anything else under /_tessera/ still needs root's signature.
    assert_eq!(probe(&server.addr, "GET", "/_tessera/admin/stats", &[]).status, 403);

    // A data folder that cannot be written: not ready, and why.
    std::fs::remove_dir(common::tmp_dir(dir.path())).unwrap();
    let ready = probe(&server.addr, "GET", "/_tessera/health/ready", &[]);
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("not writable"), "{}", ready.text());
    assert_eq!(probe(&server.addr, "GET", "/_tessera/health/live", &[]).status, 200, "still alive");
    std::fs::create_dir(common::tmp_dir(dir.path())).unwrap();
    assert_eq!(probe(&server.addr, "GET", "/_tessera/health/ready", &[]).status, 200);
}

/// The value of the sample `name{labels}` (or `name` without labels) in a
/// Prometheus text page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_requests_bytes_and_the_store_and_can_need_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--metrics-token", "s3cr3t-token"]);
    let c = server.client();
    assert_eq!(c.send(Req::new("PUT", "/metered")).status, 200);
    let body = pattern(100_000, 3);
    assert_eq!(c.send(Req::new("PUT", "/metered/k").body(&body)).status, 200);
    assert_eq!(c.send(Req::new("GET", "/metered/k")).status, 200);
    assert_eq!(c.send(Req::new("GET", "/metered/missing")).status, 404);

    assert_eq!(probe(&server.addr, "GET", "/_tessera/metrics", &[]).status, 403, "no token");
    let wrong = [("authorization", "Bearer nope")];
    assert_eq!(probe(&server.addr, "GET", "/_tessera/metrics", &wrong).status, 403, "a wrong token");
    let right = [("authorization", "Bearer s3cr3t-token")];
    let resp = probe(&server.addr, "GET", "/_tessera/metrics", &right);
    assert_eq!(resp.status, 200);
    assert!(resp.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let page = resp.text();
    let expect = [
        (r#"tessera_requests_total{op="PutObject",status="200"}"#, 1.0),
        (r#"tessera_requests_total{op="GetObject",status="200"}"#, 1.0),
        (r#"tessera_requests_total{op="GetObject",status="404"}"#, 1.0),
        (r#"tessera_received_bytes_total{op="PutObject"}"#, 100_000.0),
        (r#"tessera_request_duration_seconds_count{op="GetObject"}"#, 2.0),
        ("tessera_requests_in_flight", 1.0),
        ("tessera_objects", 1.0),
        ("tessera_logical_bytes", 100_000.0),
        ("tessera_stored_bytes", 100_000.0),
        ("tessera_upload_bytes", 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(sample(&page, series), Some(want), "{series} in\n{page}");
    }
    let sent = sample(&page, r#"tessera_sent_bytes_total{op="GetObject"}"#).unwrap();
    assert!(sent >= 100_000.0, "the object's bytes and the 404's error document: {sent}");
    assert!(sample(&page, "tessera_commit_batch_writes_count").unwrap() >= 2.0, "{page}");
    assert!(sample(&page, "tessera_commit_duration_seconds_count").unwrap() >= 2.0, "{page}");
    assert!(sample(&page, "tessera_disk_free_bytes").unwrap() > 0.0, "{page}");
}

#[test]
fn every_request_gets_one_access_line_in_text_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = start_logged(&dir.path().join("data"), &log, &[]);
    let c = common::Client::new(&server.addr);
    assert_eq!(c.send(Req::new("PUT", "/logged")).status, 200);
    assert_eq!(c.send(Req::new("PUT", "/logged/a%20key").body(b"12345")).status, 200);
    assert_eq!(c.send(Req::new("GET", "/logged/nothing")).status, 404);
    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "no colour codes when stderr is not a terminal");
    assert!(text.contains("tessera starting") && text.contains("version="), "{text}");
    assert!(!text.contains(SECRET_KEY), "the secret is never logged");
    let access: Vec<&str> = text.lines().filter(|l| l.contains("tessera::access")).collect();
    assert_eq!(access.len(), 3, "{text}");
    let put = access[1];
    for needle in
        ["user=root", "op=PutObject", "bucket=logged", "key=\"a key\"", "status=200", "bytes_in=5", "client=127.0.0.1:"]
    {
        assert!(put.contains(needle), "{needle} in {put}");
    }
    assert!(access[2].contains("code=NoSuchKey") && access[2].contains("status=404"), "{}", access[2]);

    let json_log = dir.path().join("json.log");
    let server = start_logged(&dir.path().join("data2"), &json_log, &["--log-format", "json"]);
    let c = common::Client::new(&server.addr);
    assert_eq!(c.send(Req::new("PUT", "/logged-json")).status, 200);
    server.stop();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&json_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let access = lines.iter().find(|l| l["target"] == "tessera::access").expect("an access line");
    assert_eq!(access["fields"]["op"], "CreateBucket", "{access}");
    assert_eq!(access["fields"]["status"], 200, "{access}");
}
