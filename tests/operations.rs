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

/// `tessera serve` with the test keys, run to its exit (a start that fails).
fn serve_fails(listen: &str, data: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", listen, "--data"])
        .arg(data)
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
    wait_for_a_file(&dir.path().join("tmp"));

    let out = serve_fails("127.0.0.1:0", dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another Tessera is probably running on this data folder"), "{stderr}");

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
