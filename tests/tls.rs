//! `tessera serve --tls-cert --tls-key` (issue 15) with the clients users run:
//! curl, aws-cli v2 and boto3 against a certificate chain the test makes
//! (its own CA, an intermediate, a leaf for 127.0.0.1 and localhost), the
//! reload on SIGHUP, what a bad file does at start and at reload, and what a
//! hostile client can do to the TLS port.
//!
//! The machine's CA variables (`AWS_CA_BUNDLE`, `CURL_CA_BUNDLE`, ...) are
//! replaced by the test's own CA for every client, or removed where the test
//! proves that the certificate is really checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pattern, Server, ACCESS_KEY, REGION, SECRET_KEY};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sha2::{Digest, Sha256};

/// The CA variables of this machine that a client could pick up instead of
/// what the test gives it.
const CA_VARIABLES: [&str; 5] =
    ["AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"];

/// A test CA with an intermediate, issuing server certificates into `dir`.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    intermediate: Issuer<'static, KeyPair>,
    intermediate_pem: String,
}

/// A server certificate: its chain file, key file, and its own DER.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "Tessera test root CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let root = Issuer::new(ca_params, ca_key);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "Tessera test intermediate CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let key = KeyPair::generate().unwrap();
        let intermediate_pem = params.signed_by(&key, &root).unwrap().pem();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        Pki { dir: dir.to_path_buf(), ca, intermediate: Issuer::new(params, key), intermediate_pem }
    }

    /// A certificate for 127.0.0.1 and localhost named `name`, with `key`:
    /// the chain file holds it and the intermediate, the key file `key_pem`
    /// (the key in whatever PEM form the test wants to serve).
    fn issue_with(&self, name: &str, key: &KeyPair, key_pem: &str) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let leaf = params.signed_by(key, &self.intermediate).unwrap();
        let (cert, key_file) = (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")));
        std::fs::write(&cert, format!("{}{}", leaf.pem(), self.intermediate_pem)).unwrap();
        std::fs::write(&key_file, key_pem).unwrap();
        Issued { cert, key: key_file, der: leaf.der().to_vec() }
    }

    /// A certificate with a new ECDSA P-256 key in PKCS#8.
    fn issue(&self, name: &str) -> Issued {
        let key = KeyPair::generate().unwrap();
        self.issue_with(name, &key, &key.serialize_pem())
    }
}

fn start_tls(data: &Path, issued: &Issued, extra: &[&str]) -> Server {
    let (cert, key) = (issued.cert.to_str().unwrap(), issued.key.to_str().unwrap());
    let mut args = vec!["--tls-cert", cert, "--tls-key", key];
    args.extend_from_slice(extra);
    Server::start_with(data, &args)
}

/// curl with only the CAs given here (`--cacert`), never the machine's.
fn curl(args: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    for name in CA_VARIABLES {
        cmd.env_remove(name);
    }
    cmd.args(["-sS", "--max-time", "20"]).args(args).output().expect("run curl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a probe answered (`live`, `ready`), without the line end.
fn answer(out: &Output) -> String {
    text(&out.stdout).trim_end().to_string()
}

/// A rustls client that trusts only the test CA: the raw view of what a new
/// connection is served.
fn tls_client(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap();
    Arc::new(config.with_root_certificates(roots).with_no_client_auth())
}

type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A completed TLS handshake with the server at `addr`.
fn tls_connect(addr: &str, ca: &Path) -> TlsConn {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::StreamOwned::new(rustls::ClientConnection::new(tls_client(ca), name).unwrap(), tcp);
    while conn.conn.is_handshaking() {
        conn.conn.complete_io(&mut conn.sock).expect("TLS handshake");
    }
    conn
}

/// The certificate a new connection to `addr` is served.
fn served_cert(addr: &str, ca: &Path) -> Vec<u8> {
    let conn = tls_connect(addr, ca);
    conn.conn.peer_certificates().expect("a certificate")[0].to_vec()
}

/// `GET path` on a kept-alive TLS connection; the status and body.
fn get_on(conn: &mut TlsConn, path: &str) -> (u16, String) {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = text(&head);
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).unwrap();
    (status, text(&body).trim_end().to_string())
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Health, readiness and metrics over https with curl and the test CA, and a
/// start-up line that says https; curl without the CA refuses the server, so
/// the certificate served is really the one given (a chain with an
/// intermediate, which the server must send for curl to verify it).
#[test]
fn curl_checks_the_chain_and_the_probes_answer_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let issued = pki.issue("server-a");
    let server = start_tls(&dir.path().join("data"), &issued, &[]);
    let ca = pki.ca.to_str().unwrap();
    let base = format!("https://{}", server.addr);
    for probe in ["/_tessera/health/live", "/_tessera/health/ready", "/_tessera/metrics"] {
        let out = curl(&["--cacert", ca, "-w", "\n%{http_code} %{ssl_verify_result}", &format!("{base}{probe}")]);
        let output = text(&out.stdout);
        assert!(out.status.success(), "curl {probe}: {}", text(&out.stderr));
        assert!(output.ends_with("\n200 0"), "{probe} over https: {output}");
    }
    let out = curl(&["--cacert", ca, &format!("https://localhost:{}/_tessera/health/live", port(&server.addr))]);
    assert_eq!(answer(&out), "live", "by host name: {}", text(&out.stderr));

    let system = curl(&[&format!("{base}/_tessera/health/live")]);
    assert_eq!(system.status.code(), Some(60), "curl with the system's CAs must refuse: {}", text(&system.stderr));
    assert!(text(&system.stderr).contains("certificate"), "{}", text(&system.stderr));
    assert_eq!(served_cert(&server.addr, &pki.ca), issued.der, "the certificate given is the one served");
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

/// The environment of aws-cli and boto3: the test's keys, region and CA, and
/// no configuration of the machine's user.
fn aws_env(cmd: &mut Command, home: &Path, ca: &Path) {
    for name in CA_VARIABLES {
        cmd.env_remove(name);
    }
    cmd.env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CA_BUNDLE", ca);
}

/// aws-cli v2, the Debian package's `/usr/bin/aws` (the `aws` on PATH may
/// be v1 from PyPI).
fn aws(home: &Path, ca: &Path, endpoint: &str, args: &[&str]) -> Output {
    let bin = Path::new("/usr/bin/aws");
    assert!(bin.exists(), "aws-cli v2 is missing: `apt-get install awscli` (test.sh installs it)");
    let mut cmd = Command::new(bin);
    aws_env(&mut cmd, home, ca);
    let out = cmd.args(args).args(["--endpoint-url", endpoint]).output().expect("run aws");
    assert!(out.status.success(), "aws {args:?}: {}: {}{}", out.status, text(&out.stdout), text(&out.stderr));
    out
}

/// aws-cli v2 makes a bucket, uploads a 17 MiB file over https (multipart:
/// past its 8 MiB threshold) and downloads it again, byte for byte.
#[test]
fn aws_cli_v2_copies_a_multipart_file_both_ways_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = start_tls(&dir.path().join("data"), &pki.issue("server-a"), &[]);
    let endpoint = format!("https://{}", server.addr);
    let (home, source, back) = (dir.path(), dir.path().join("source.bin"), dir.path().join("back.bin"));
    std::fs::write(&source, pattern(17 * 1024 * 1024 + 5, 15)).unwrap();
    aws(home, &pki.ca, &endpoint, &["s3", "mb", "s3://tls-bucket"]);
    aws(home, &pki.ca, &endpoint, &["s3", "cp", source.to_str().unwrap(), "s3://tls-bucket/dir/big file.bin"]);
    let head =
        aws(home, &pki.ca, &endpoint, &["s3api", "head-object", "--bucket", "tls-bucket", "--key", "dir/big file.bin"]);
    assert!(text(&head.stdout).contains("-3\\\""), "a 3-part multipart ETag: {}", text(&head.stdout));
    aws(home, &pki.ca, &endpoint, &["s3", "cp", "s3://tls-bucket/dir/big file.bin", back.to_str().unwrap()]);
    assert_eq!(sha256_file(&back), sha256_file(&source), "the download is the upload");
}

/// boto3 (urllib3 and Python's ssl) puts and gets an object over https,
/// verifying against the test CA.
#[test]
fn boto3_puts_and_gets_an_object_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = start_tls(&dir.path().join("data"), &pki.issue("server-a"), &[]);
    let script = r#"
import hashlib, os, sys
import boto3
from botocore.config import Config
endpoint, ca = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, verify=ca,
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.create_bucket(Bucket="boto-tls")
body = os.urandom(3 * 1024 * 1024 + 7)
s3.put_object(Bucket="boto-tls", Key="k &+é", Body=body)
got = s3.get_object(Bucket="boto-tls", Key="k &+é")["Body"].read()
assert got == body, f"{len(got)} bytes back, not the {len(body)} put"
print("ok", hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest())
"#;
    let mut cmd = Command::new("python3");
    aws_env(&mut cmd, dir.path(), &pki.ca);
    let out = cmd
        .args(["-c", script, &format!("https://{}", server.addr), pki.ca.to_str().unwrap()])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "boto3: {}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok True");
}

fn sighup(server: &Server) {
    let status = Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(status.success(), "kill -HUP");
}

/// Polls until `done` holds, for up to 10 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// After the files are replaced and SIGHUP sent, new connections get the new
/// certificate while a connection made before goes on; a broken certificate
/// file, then a key that is not the certificate's, are logged with the file's
/// name and the certificate served until then stays.
#[test]
fn sighup_reloads_the_certificate_and_a_bad_reload_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (first, second) = (pki.issue("server-a"), pki.issue("server-b"));
    let (cert, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let live = Issued { cert: cert.clone(), key: key.clone(), der: first.der.clone() };
    let log = dir.path().join("server.log");
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let args = ["--tls-cert", cert_arg, "--tls-key", key_arg];
    let stderr = std::fs::File::create(&log).unwrap();
    let server = Server::try_start_with(&dir.path().join("data"), &args, stderr).expect("server starts");
    assert_eq!(served_cert(&server.addr, &pki.ca), live.der);
    let mut before = tls_connect(&server.addr, &pki.ca);
    assert_eq!(get_on(&mut before, "/_tessera/health/live"), (200, "live".to_string()));

    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    sighup(&server);
    eventually("a new connection sees the new certificate", || served_cert(&server.addr, &pki.ca) == second.der);
    assert_eq!(get_on(&mut before, "/_tessera/health/live"), (200, "live".to_string()), "the old connection goes on");

    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    sighup(&server);
    let logged = |needle: &str| std::fs::read_to_string(&log).unwrap().lines().any(|l| l.contains(needle));
    eventually("the failed reload is logged naming the file", || {
        logged("not reloaded") && logged(&format!("{}: not valid PEM", cert.display()))
    });
    assert_eq!(served_cert(&server.addr, &pki.ca), second.der, "still the certificate that loaded");

    std::fs::copy(&first.cert, &cert).unwrap(); // with the second's key: a mismatch
    sighup(&server);
    eventually("the mismatch is logged naming both files", || {
        logged(&format!("{} does not hold the private key of the certificate in {}", key.display(), cert.display()))
    });
    assert_eq!(served_cert(&server.addr, &pki.ca), second.der, "still the certificate that loaded");
    let ca = pki.ca.to_str().unwrap();
    let health = curl(&["--cacert", ca, &format!("https://{}/_tessera/health/ready", server.addr)]);
    assert_eq!(answer(&health), "ready", "the server still serves: {}", text(&health.stderr));
}

/// `tessera serve` that is expected to exit at start; its stderr.
fn serve_fails(data: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data).args(args);
    cmd.env("TESSERA_ACCESS_KEY", ACCESS_KEY).env("TESSERA_SECRET_KEY", SECRET_KEY).env("RUST_BACKTRACE", "0");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "the start should fail: {}", text(&out.stdout));
    assert!(!data.exists(), "a failed TLS start leaves the data folder untouched");
    text(&out.stderr)
}

/// Every bad certificate or key stops the start with a message naming the
/// file, before anything is written to the data folder; one flag of the two
/// is refused; the environment variables work as the flags do.
#[test]
fn bad_tls_files_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (good, other) = (pki.issue("server-a"), pki.issue("server-b"));
    let data = dir.path().join("data");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![s(&missing), s(&good.key)], format!("reading {}", missing.display())),
        (vec![s(&good.key), s(&good.key)], format!("{}: no certificate in it", good.key.display())),
        (vec![s(&good.cert), s(&good.cert)], format!("{}: no private key in it", good.cert.display())),
        (vec![s(&good.cert), s(&garbage)], format!("{}: no private key in it", garbage.display())),
        (
            vec![s(&good.cert), s(&other.key)],
            format!(
                "{} does not hold the private key of the certificate in {}",
                other.key.display(),
                good.cert.display()
            ),
        ),
    ];
    for (files, expected) in cases {
        let stderr = serve_fails(&data, &["--tls-cert", &files[0], "--tls-key", &files[1]], &[]);
        assert!(stderr.contains(&expected), "expected `{expected}` in:\n{stderr}");
    }
    let stderr = serve_fails(&data, &["--tls-cert", &s(&good.cert)], &[]);
    assert!(stderr.contains("--tls-key"), "one of the two flags: {stderr}");
    let stderr = serve_fails(&data, &[], &[("TESSERA_TLS_CERT", &good.cert), ("TESSERA_TLS_KEY", &other.key)]);
    assert!(stderr.contains("does not hold the private key"), "from the environment: {stderr}");

    let env = [("TESSERA_TLS_CERT", good.cert.as_path()), ("TESSERA_TLS_KEY", good.key.as_path())];
    let server = Server::try_start_with_env("127.0.0.1:0", &data, &[], &env, Stdio::inherit()).expect("starts");
    assert_eq!(served_cert(&server.addr, &pki.ca), good.der, "TLS from the environment");
}

/// `openssl pkey -traditional`: the same key as PKCS#1 (RSA) or SEC1 (EC).
fn traditional(pkcs8_pem: &str, dir: &Path) -> String {
    let input = dir.join("pkcs8.key");
    std::fs::write(&input, pkcs8_pem).unwrap();
    let out = Command::new("openssl").args(["pkey", "-traditional", "-in"]).arg(&input).output().expect("openssl");
    assert!(out.status.success(), "openssl pkey: {}", text(&out.stderr));
    text(&out.stdout)
}

/// An RSA key in PKCS#1 (`RSA PRIVATE KEY`) and an EC key in SEC1 (`EC
/// PRIVATE KEY`), as openssl and certbot write them, are served as well as
/// PKCS#8 (the other tests).
#[test]
fn pkcs1_rsa_and_sec1_ec_keys_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("openssl genpkey");
    assert!(out.status.success(), "openssl genpkey: {}", text(&out.stderr));
    let rsa = KeyPair::from_pem(&text(&out.stdout)).unwrap();
    let ec = KeyPair::generate().unwrap();
    for (name, key, marker) in [("rsa-pkcs1", rsa, "RSA PRIVATE KEY"), ("ec-sec1", ec, "EC PRIVATE KEY")] {
        let pem = traditional(&key.serialize_pem(), dir.path());
        assert!(pem.starts_with(&format!("-----BEGIN {marker}-----")), "{name}: {pem}");
        let issued = pki.issue_with(name, &key, &pem);
        let server = start_tls(&dir.path().join(name), &issued, &[]);
        assert_eq!(served_cert(&server.addr, &pki.ca), issued.der, "{name}");
        let ready =
            curl(&["--cacert", pki.ca.to_str().unwrap(), &format!("https://{}/_tessera/health/ready", server.addr)]);
        assert_eq!(answer(&ready), "ready", "{name}: {}", text(&ready.stderr));
    }
}

/// Reads until the server closes; the bytes and how long it took.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open ({e}) after {} bytes", got.len()),
        }
    }
    (got, started.elapsed())
}

/// Plain HTTP on the TLS port gets a 400 that says to use https:// and the
/// connection is closed; bytes that are neither get the connection closed;
/// a client that connects and sends nothing, or part of a ClientHello,
/// neither holds up other clients nor keeps its connection past the 30 s
/// handshake limit. The server serves throughout.
#[test]
fn hostile_clients_on_the_tls_port_are_closed_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = start_tls(&dir.path().join("data"), &pki.issue("server-a"), &[]);
    let ready = || {
        let out =
            curl(&["--cacert", pki.ca.to_str().unwrap(), &format!("https://{}/_tessera/health/ready", server.addr)]);
        answer(&out) == "ready"
    };
    let mut silent = TcpStream::connect(&server.addr).unwrap();
    let mut partial = TcpStream::connect(&server.addr).unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap(); // a ClientHello that stops
    let opened = Instant::now();
    assert!(ready(), "served while two handshakes stall");
    assert!(opened.elapsed() < Duration::from_secs(10), "not held up by the stalled handshakes");

    let mut plain = TcpStream::connect(&server.addr).unwrap();
    plain.write_all(b"GET /_tessera/health/live HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
    let (reply, _) = read_until_closed(&mut plain, Duration::from_secs(10));
    let reply = text(&reply);
    assert!(reply.starts_with("HTTP/1.0 400 "), "plain HTTP: {reply}");
    assert!(reply.contains("use https://"), "plain HTTP: {reply}");
    let out = curl(&[&format!("http://{}/_tessera/health/live", server.addr)]);
    assert!(text(&out.stdout).contains("use https://"), "curl http:// to the TLS port: {}", text(&out.stderr));

    let mut garbage = TcpStream::connect(&server.addr).unwrap();
    garbage.write_all(&[0u8; 512]).unwrap();
    let (_, took) = read_until_closed(&mut garbage, Duration::from_secs(10));
    assert!(took < Duration::from_secs(5), "bytes that are not TLS close the connection at once ({took:?})");
    assert!(ready(), "served after the hostile clients");

    for (what, stream) in [("silent", &mut silent), ("partial ClientHello", &mut partial)] {
        let (_, _) = read_until_closed(stream, Duration::from_secs(45));
        let held = opened.elapsed();
        assert!(held >= Duration::from_secs(29), "{what}: closed before the 30 s limit ({held:?})");
        assert!(held < Duration::from_secs(45), "{what}: held past the limit ({held:?})");
    }
    assert!(ready(), "served after the stalled handshakes timed out");
}

/// The send deadline holds under TLS: a client that asks for a response
/// larger than the socket buffers (a listing of 1,000 long keys, about
/// 1.4 MB, built whole in memory) and reads nothing loses its connection
/// after `--body-timeout`, as on plain connections (stalled.rs).
#[test]
fn a_tls_response_nobody_reads_is_dropped_after_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = start_tls(&dir.path().join("data"), &pki.issue("server-a"), &["--body-timeout", "1s"]);
    let fill = r#"
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="long")
for i in range(1000):
    s3.put_object(Bucket="long", Key=f"{i:04}" + "k" * 1016, Body=b"x")
"#;
    let mut cmd = Command::new("python3");
    aws_env(&mut cmd, dir.path(), &pki.ca);
    let out = cmd.args(["-c", fill, &format!("https://{}", server.addr)]).output().expect("run python3");
    assert!(out.status.success(), "boto3: {}", text(&out.stderr));

    let c = server.client();
    let listing = common::Req::new("GET", "/long").query("list-type=2&fetch-owner=true");
    let head = c.signed_head(&listing, std::time::SystemTime::now(), 0, None);
    let mut whole = tls_connect(&server.addr, &pki.ca);
    whole.write_all(head.as_bytes()).unwrap();
    let full = read_tls_until_closed(&mut whole);
    assert!(full > 1_300_000, "the listing is larger than the socket buffers ({full} bytes)");

    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = common::connect_with_small_receive_buffer(&server.addr);
    let mut conn = rustls::StreamOwned::new(rustls::ClientConnection::new(tls_client(&pki.ca), name).unwrap(), tcp);
    let head = c.signed_head(&listing, std::time::SystemTime::now(), 0, None);
    conn.write_all(head.as_bytes()).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_secs(4)); // reads nothing, well past the 1 s limit
    conn.sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let received = read_tls_until_closed(&mut conn);
    assert!(received < full, "the response was cut short: {received} of about {full} bytes");
    let again = curl(&["--cacert", pki.ca.to_str().unwrap(), &format!("https://{}/_tessera/health/live", server.addr)]);
    assert_eq!(answer(&again), "live", "others are served");
}

/// Reads a TLS connection until the server ends it; the bytes read.
fn read_tls_until_closed(conn: &mut TlsConn) -> usize {
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received += n,
            // Ended without TLS's close_notify, or reset.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => {
                return received
            }
            Err(e) => panic!("the server kept the TLS connection open: {e} after {received} bytes"),
        }
    }
}

/// `tessera ARGS --endpoint https://ADDR` with the test keys and CA.
fn tessera_cp(home: &Path, ca: &Path, addr: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    aws_env(&mut cmd, home, ca);
    let out = cmd.args(args).args(["--endpoint", &format!("https://{addr}")]).output().unwrap();
    assert!(out.status.success(), "tessera {args:?}: {}", text(&out.stderr));
    out
}

/// Tessera's own clients keep working against a TLS server: `tessera stats`
/// finds it through `server-info` (which says https and names the
/// certificate it trusts), `tessera cp` trusts `AWS_CA_BUNDLE` and refuses
/// the server without it at once (a handshake failure is not retried).
#[test]
fn tessera_stats_and_cp_work_against_a_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let data = dir.path().join("data");
    let server = start_tls(&data, &pki.issue("server-a"), &[]);
    let info = common::server_info(&data);
    assert!(info.contains("scheme=https\n") && info.contains("tls_cert=/"), "server-info: {info}");

    let (source, back) = (dir.path().join("source.bin"), dir.path().join("back.bin"));
    std::fs::write(&source, pattern(9 * 1024 * 1024, 3)).unwrap();
    tessera_cp(dir.path(), &pki.ca, &server.addr, &["mb", "s3://own-clients"]);
    tessera_cp(dir.path(), &pki.ca, &server.addr, &["cp", source.to_str().unwrap(), "s3://own-clients/f"]);
    tessera_cp(dir.path(), &pki.ca, &server.addr, &["cp", "s3://own-clients/f", back.to_str().unwrap()]);
    assert_eq!(sha256_file(&back), sha256_file(&source));
    let stats = common::stats(&data);
    assert_eq!(common::field(&stats, "objects"), 1, "tessera stats through the running TLS server: {stats}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    aws_env(&mut cmd, dir.path(), &pki.ca);
    cmd.env_remove("AWS_CA_BUNDLE").env("TESSERA_LOG", "debug");
    cmd.args(["ls", "s3://own-clients", "--endpoint", &format!("https://{}", server.addr)]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "without the test CA the server is not trusted");
    let why = text(&out.stderr);
    assert!(why.contains("certificate"), "says why: {why}");
    assert!(why.contains("TLS handshake"), "a refused certificate is said to be one: {why}");
    assert!(!why.contains("retrying"), "and not retried as a lost connection would be: {why}");
}

/// `serve --help` names the flags, their variables and the SIGHUP reload.
#[test]
fn serve_help_explains_tls() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).args(["serve", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for needle in ["--tls-cert <PATH>", "--tls-key <PATH>", "TESSERA_TLS_CERT", "TESSERA_TLS_KEY", "SIGHUP", "PKCS#1"] {
        assert!(help.contains(needle), "`{needle}` in serve --help:\n{help}");
    }
}
