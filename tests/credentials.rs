//! The root credentials at start-up: generated once and printed only then,
//! never overwritten, and a broken credentials file or half of the
//! environment pair stops the server with a clear error instead of being
//! replaced or half used.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Starts `tessera serve` on `data` with `env`; returns what it printed up
/// to its listening line (then stops it), or its stderr if it exited.
fn start(data: &Path, env: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data);
    cmd.env_remove("TESSERA_ACCESS_KEY").env_remove("TESSERA_SECRET_KEY").env("TESSERA_LOG", "warn");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start tessera");
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(printed);
        }
    }
    let output = child.wait_with_output().expect("wait");
    assert!(!output.status.success(), "a server that does not listen exits with an error");
    Err(String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_secret_is_generated_once_printed_once_and_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = start(dir.path(), &[]).expect("first start");
    let file = std::fs::read_to_string(dir.path().join("root-credentials")).expect("credentials file");
    let secret = file.lines().nth(1).expect("a secret line").to_string();
    assert!(first.contains(&secret), "the first start prints the secret it generated:\n{first}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("root-credentials")).expect("metadata").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "owner-only");
    let db_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("meta.redb")).expect("metadata").permissions(),
    );
    assert_eq!(db_mode & 0o777, 0o600, "meta.redb holds users' secrets: owner-only");
    let second = start(dir.path(), &[]).expect("second start");
    assert!(!second.contains(&secret), "later starts never print the secret:\n{second}");
    let access = file.lines().next().expect("an access key line");
    assert!(second.contains(access), "the access key is printed at every start");
    assert_eq!(std::fs::read_to_string(dir.path().join("root-credentials")).expect("file"), file, "unchanged");
}

#[test]
fn a_broken_credentials_file_stops_the_server_and_is_kept() {
    for broken in ["", "\n", "ONLYONELINE\n", "AKID\nsecret\nthird\n", "AKID\nsec ret\n"] {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path()).expect("dir");
        let path = dir.path().join("root-credentials");
        std::fs::write(&path, broken).expect("write");
        let refused = start(dir.path(), &[]).expect_err("a broken credentials file must stop the server");
        assert!(refused.contains("root-credentials"), "the error names the file ({broken:?}): {refused}");
        assert_eq!(std::fs::read_to_string(&path).expect("file"), broken, "the file is never replaced");
    }
}

#[test]
fn half_of_the_environment_pair_is_an_error() {
    for (name, value) in [("TESSERA_ACCESS_KEY", "AKIDONLY"), ("TESSERA_SECRET_KEY", "secretonly")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let refused = start(dir.path(), &[(name, value)]).expect_err("only one of the pair must stop the server");
        assert!(refused.contains("TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY"), "{refused}");
        assert!(!dir.path().join("root-credentials").exists(), "no pair is generated instead");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let both = start(dir.path(), &[("TESSERA_ACCESS_KEY", "AKIDBOTH"), ("TESSERA_SECRET_KEY", "secretboth")]);
    let printed = both.expect("both set");
    assert!(printed.contains("AKIDBOTH") && !printed.contains("secretboth"), "{printed}");
}
