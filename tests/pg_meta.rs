//! The PostgreSQL metadata infrastructure (issue 17, steps 3 and 4): `tessera
//! migrate`, the schema check of `tessera serve --meta`, the pool, TLS and
//! the SERIALIZABLE retry wrapper, against a real PostgreSQL.
//!
//! The database is `TESSERA_TEST_PG` (scripts/pg-test-cluster.sh starts a
//! throw-away cluster and sets it; ./test.sh sources it). Without it every
//! test prints why and passes, except under CI (`CI` set), where it fails:
//! CI must not go green by testing nothing. Each test works in a schema of
//! its own (`t_<random>`, chosen by `search_path` in the URL), so they run
//! in parallel on one cluster.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::pg::{cluster, migrate, Db};
use tessera::store::pg::schema::TABLES_V1;
use tessera::store::pg::{run_serializable, MetaTarget, PgError, Pool, PoolOptions, RetryPolicy, RunError, Step};

/// Runs the real `tessera` binary with `args`.
fn tessera(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("TESSERA_META")
        .env_remove("TESSERA_META_PASSWORD")
        .env("TESSERA_LOG", "info")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tessera")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `tessera serve --meta URL` on a data folder that must stay untouched;
/// its exit must be a refusal with a message, never a panic.
fn serve_refused(url: &str, env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("data");
    let listen = "127.0.0.1:0";
    let folder_arg = folder.to_str().unwrap();
    let out = tessera(&["serve", "--listen", listen, "--console", "off", "--data", folder_arg, "--meta", url], env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout: {}\nstderr: {stderr}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("listening on"), "{}", text(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!folder.exists(), "serve --meta touched the data folder");
    stderr
}

#[tokio::test]
async fn migrate_creates_the_schema_and_running_it_again_changes_nothing() {
    let Some(db) = Db::new() else { return };
    let first = migrate(&db.url());
    assert!(first.contains(&format!("schema:    {} (created)", db.schema)), "{first}");
    assert!(first.contains("version:   none -> 1"), "{first}");
    assert!(first.contains("(PostgreSQL "), "{first}");
    for table in TABLES_V1 {
        assert!(first.contains(table), "{table} not reported created: {first}");
    }
    let second = migrate(&db.url());
    assert!(second.contains("created:   nothing"), "{second}");
    assert!(second.contains("version:   1, already current"), "{second}");

    let client = db.client().await;
    let tables = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1", &[&db.schema])
        .await
        .unwrap();
    let tables: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    for table in TABLES_V1 {
        assert!(tables.iter().any(|t| t == table), "{table} missing: {tables:?}");
    }
    let rows = client.query("SELECT id, version, engine FROM tessera_schema", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].get::<_, i32>(0), rows[0].get::<_, i32>(1)), (1, 1));
    assert_eq!(rows[0].get::<_, String>(2), "postgresql");
}

#[tokio::test]
async fn serve_refuses_a_missing_schema_naming_tessera_migrate() {
    let Some(db) = Db::new() else { return };
    let stderr = serve_refused(&db.url(), &[]);
    assert!(stderr.contains("has no Tessera schema"), "{stderr}");
    assert!(stderr.contains(&format!("run `tessera migrate --meta {}` first", db.url())), "{stderr}");

    db.create().await; // the schema (namespace) exists, the tables do not
    let stderr = serve_refused(&db.url(), &[]);
    assert!(stderr.contains("has no Tessera schema"), "{stderr}");
}

#[tokio::test]
async fn serve_and_migrate_refuse_an_unknown_schema_version() {
    let Some(db) = Db::new() else { return };
    migrate(&db.url());
    let client = db.client().await;
    client.batch_execute("UPDATE tessera_schema SET version = 99").await.unwrap();
    let stderr = serve_refused(&db.url(), &[]);
    assert!(stderr.contains("has schema version 99, newer than this tessera knows (1)"), "{stderr}");
    assert!(stderr.contains("tessera migrate --meta"), "{stderr}");

    let out = tessera(&["migrate", "--meta", &db.url()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("newer than this tessera knows"), "{}", text(&out.stderr));
    let version: i32 = client.query_one("SELECT version FROM tessera_schema", &[]).await.unwrap().get(0);
    assert_eq!(version, 99, "a refused migrate changed the version");

    client.batch_execute("UPDATE tessera_schema SET version = 0").await.unwrap();
    let stderr = serve_refused(&db.url(), &[]);
    assert!(stderr.contains("has schema version 0, older than this tessera's 1"), "{stderr}");
    assert!(stderr.contains(&format!("run `tessera migrate --meta {}`", db.url())), "{stderr}");
}

#[tokio::test]
async fn a_wrong_port_is_a_clear_error_with_the_password_redacted() {
    let Some(_cluster) = cluster() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://tessera:hunter2@127.0.0.1:{port}/postgres?sslmode=disable");
    let shown = format!("postgres://tessera:***@127.0.0.1:{port}/postgres?sslmode=disable");
    let out = tessera(&["migrate", "--meta", &url], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot connect to the metadata database at {shown}")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("hunter2") && !stderr.contains("panicked"), "{stderr}");

    let stderr = serve_refused(&url, &[]);
    assert!(stderr.contains(&format!("cannot connect to the metadata database at {shown}")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // The retry wrapper gives up after its reconnect time, with the reason.
    let target = MetaTarget::parse(&url, None).unwrap();
    let pool = Pool::new(target, None, PoolOptions::default()).unwrap();
    let policy = RetryPolicy { reconnect_for: Duration::from_millis(300), ..RetryPolicy::default() };
    let started = Instant::now();
    let result: Result<(), RunError<()>> =
        run_serializable(&pool, &policy, |t| Box::pin(async move { Ok(t.execute("SELECT 1", &[]).await.map(drop)?) }))
            .await;
    match result {
        Err(RunError::Failed(e @ PgError::Unavailable { .. })) => {
            let text = e.to_string();
            assert!(text.contains("Connection refused") && !text.contains("hunter2"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn passwords_never_appear_in_messages_or_logs() {
    let Some(db) = Db::new() else { return };
    // The test cluster trusts local connections, so any password is accepted.
    let url = db.url().replace("://tessera@", "://tessera:hunter2@");
    let stderr = serve_refused(&url, &[]);
    assert!(stderr.contains("tessera:***@"), "{stderr}");
    assert!(stderr.contains("checking the metadata database"), "the log line: {stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // From TESSERA_META and TESSERA_META_PASSWORD: neither is echoed (the
    // schema is not migrated yet, so serve refuses after connecting).
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0", "--console", "off", "--data"])
        .arg(data.path().join("data"))
        .env("TESSERA_META", db.url_with("sslmode=disable&password=hunter3"))
        .env("TESSERA_META_PASSWORD", "hunter4")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("password=***"), "{stderr}");
    assert!(!stderr.contains("hunter3") && !stderr.contains("hunter4"), "{stderr}");

    let out = tessera(&["migrate", "--meta", &url], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("tessera:***@") && !all.contains("hunter2"), "{all}");
    let help = tessera(&["serve", "--help"], &[("TESSERA_META", "postgres://u:hunter5@h/d")]);
    assert!(!text(&help.stdout).contains("hunter5"), "{}", text(&help.stdout));
}

/// A counter row that two transactions both read and then write.
async fn counter_table(db: &Db) {
    db.create().await;
    let client = db.client().await;
    client.batch_execute("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)").await.unwrap();
    client.batch_execute("INSERT INTO counter VALUES (1, 0)").await.unwrap();
}

async fn counter(db: &Db) -> i32 {
    db.client().await.query_one("SELECT n FROM counter WHERE id = 1", &[]).await.unwrap().get(0)
}

/// Two sessions read the same row, wait for each other, then both write it:
/// at SERIALIZABLE the second write fails with 40001 once the first commits.
/// Through the wrapper both end committed, one of them on its second try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_conflict_is_retried_until_both_sessions_commit() {
    let Some(db) = Db::new() else { return };
    counter_table(&db).await;
    let pool = db.pool(PoolOptions::default());
    let both_read = Arc::new(tokio::sync::Barrier::new(2));
    let calls = Arc::new(AtomicU32::new(0));
    let session = |pool: Pool, both_read: Arc<tokio::sync::Barrier>, calls: Arc<AtomicU32>| async move {
        let first = Arc::new(AtomicU32::new(0));
        run_serializable(&pool, &RetryPolicy::default(), move |t| {
            let (both_read, calls, first) = (both_read.clone(), calls.clone(), first.clone());
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let n: i32 = t.query_one("SELECT n FROM counter WHERE id = 1", &[]).await?.get(0);
                if first.fetch_add(1, Ordering::SeqCst) == 0 {
                    both_read.wait().await;
                }
                t.execute("UPDATE counter SET n = $1 WHERE id = 1", &[&(n + 1)]).await?;
                Ok::<_, Step<()>>(n + 1)
            })
        })
        .await
    };
    let a = tokio::spawn(session(pool.clone(), both_read.clone(), calls.clone()));
    let b = tokio::spawn(session(pool.clone(), both_read.clone(), calls.clone()));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    let mut seen = [a, b];
    seen.sort();
    assert_eq!(seen, [1, 2], "each session saw the other's commit or none");
    assert_eq!(counter(&db).await, 2, "no lost update");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "exactly one retry");
}

/// The work raises `code` on its first `fail_times` calls (PL/pgSQL is used
/// here only to make the server report a chosen SQLSTATE).
async fn raising(
    pool: &Pool,
    policy: &RetryPolicy,
    code: &'static str,
    fail_times: u32,
) -> (Result<(), RunError<()>>, u32) {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let result = run_serializable(pool, policy, move |t| {
        let calls = counted.clone();
        Box::pin(async move {
            if calls.fetch_add(1, Ordering::SeqCst) < fail_times {
                let raise = format!("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '{code}'; END $$");
                t.batch_execute(&raise).await?;
            }
            t.execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[]).await?;
            Ok(())
        })
    })
    .await;
    (result, calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn conflicts_are_retried_within_bounds_and_other_errors_are_not() {
    let Some(db) = Db::new() else { return };
    counter_table(&db).await;
    let pool = db.pool(PoolOptions::default());
    let policy = RetryPolicy { max_attempts: 4, ..RetryPolicy::default() };
    for code in ["40001", "40P01", "23505"] {
        let (result, calls) = raising(&pool, &policy, code, 2).await;
        assert!(result.is_ok(), "{code}: {result:?}");
        assert_eq!(calls, 3, "{code}");
    }
    assert_eq!(counter(&db).await, 3, "each committed once");

    let (result, calls) = raising(&pool, &policy, "40001", u32::MAX).await;
    match result {
        Err(RunError::Failed(PgError::Busy { attempts: 4, detail })) => assert!(detail.contains("40001"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(calls, 4);

    let (result, calls) = raising(&pool, &policy, "22012", 1).await;
    match result {
        Err(RunError::Failed(PgError::Query { detail, .. })) => assert!(detail.contains("22012"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(calls, 1, "not a conflict: not retried");
    assert_eq!(counter(&db).await, 3, "failed attempts left nothing");

    let rejected: Result<(), RunError<&str>> = run_serializable(&pool, &policy, |t| {
        Box::pin(async move {
            t.execute("UPDATE counter SET n = 100 WHERE id = 1", &[]).await?;
            Err(Step::Reject("precondition failed"))
        })
    })
    .await;
    assert!(matches!(rejected, Err(RunError::Rejected("precondition failed"))), "{rejected:?}");
    assert_eq!(counter(&db).await, 3, "a rejected transaction is rolled back");
}

/// The server ends the session mid-transaction (57P01, as at a restart):
/// the work runs again on a new connection and commits once.
#[tokio::test]
async fn a_connection_lost_before_commit_is_retried_on_a_new_client() {
    let Some(db) = Db::new() else { return };
    counter_table(&db).await;
    let pool = db.pool(PoolOptions::default());
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let result: Result<(), RunError<()>> = run_serializable(&pool, &RetryPolicy::default(), move |t| {
        let calls = counted.clone();
        Box::pin(async move {
            t.execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[]).await?;
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                t.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[]).await?;
            }
            Ok(())
        })
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(counter(&db).await, 1, "committed exactly once");
    assert_eq!(pool.idle(), 1, "the killed client was dropped, the new one kept");
}

/// The connection is lost while COMMIT runs (a deferred trigger keeps it
/// busy until another session ends the backend): in doubt, never retried,
/// and the client is not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_commit_is_in_doubt_and_not_retried() {
    let Some(db) = Db::new() else { return };
    db.create().await;
    let setup = db.client().await;
    setup
        .batch_execute(
            "CREATE TABLE slow (id int); \
             CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow DEFERRABLE INITIALLY DEFERRED \
               FOR EACH ROW EXECUTE FUNCTION slow_commit()",
        )
        .await
        .unwrap();
    let pool = db.pool(PoolOptions::default());
    let pid = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let (seen, counted) = (pid.clone(), calls.clone());
    let write = tokio::spawn(async move {
        let result: Result<(), RunError<()>> = run_serializable(&pool, &RetryPolicy::default(), move |t| {
            let (seen, calls) = (seen.clone(), counted.clone());
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                seen.store(t.query_one("SELECT pg_backend_pid()", &[]).await?.get(0), Ordering::SeqCst);
                t.execute("INSERT INTO slow VALUES (1)", &[]).await?;
                Ok(())
            })
        })
        .await;
        (result, pool.idle())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "COMMIT never seen running");
        let target = pid.load(Ordering::SeqCst);
        let committing =
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query = 'COMMIT' AND state = 'active'";
        if target != 0 && setup.query_one(committing, &[&target]).await.unwrap().get::<_, i64>(0) == 1 {
            setup.execute("SELECT pg_terminate_backend($1)", &[&target]).await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (result, idle) = write.await.unwrap();
    match result {
        Err(RunError::Failed(e @ PgError::InDoubt { .. })) => {
            assert!(e.to_string().contains("may or may not have committed"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "in doubt: not run again");
    assert_eq!(idle, 0, "the client of a lost connection is not kept");
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_pool_is_bounded_and_drops_closed_clients() {
    let Some(db) = Db::new() else { return };
    db.create().await;
    let options = PoolOptions { size: 2, acquire_timeout: Duration::from_millis(200) };
    let pool = db.pool(options);
    assert_eq!(pool.idle(), 0, "lazy: nothing connected yet");
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert!(matches!(pool.get().await, Err(PgError::PoolTimeout(_))), "a third client past --meta-pool 2");
    let pid_a = backend_pid(&a).await;
    drop(a);
    assert_eq!(pool.idle(), 1);
    let again = pool.get().await.unwrap();
    assert_eq!(backend_pid(&again).await, pid_a, "the idle client is reused");
    drop(again);

    // Its server process ends while it is idle: the next get connects anew.
    let killed: bool = b.query_one("SELECT pg_terminate_backend($1)", &[&pid_a]).await.unwrap().get(0);
    assert!(killed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = pool.get().await.unwrap();
    assert_ne!(backend_pid(&fresh).await, pid_a);
    assert_eq!(pool.idle(), 0, "the closed client was dropped, not kept");
}

/// `sslmode=require`: the server's certificate (the cluster's own, for
/// localhost and 127.0.0.1) is verified against --meta-ca, chain and name.
#[tokio::test]
async fn tls_verifies_the_chain_and_the_host_name() {
    let Some(db) = Db::new() else { return };
    let Some(ca) = std::env::var_os("TESSERA_TEST_PG_CA") else {
        assert!(std::env::var_os("CI").is_none(), "CI: the test cluster has no TLS certificate (openssl missing?)");
        eprintln!("skipped: TESSERA_TEST_PG_CA is not set");
        return;
    };
    let ca = Path::new(&ca);
    let require = db.url_with("sslmode=require");
    let target = MetaTarget::parse(&require, None).unwrap();
    let pool = Pool::new(target, Some(ca), PoolOptions::default()).unwrap();
    let client = pool.get().await.unwrap();
    let ssl: bool =
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0);
    assert!(ssl, "the connection is encrypted");
    let out = tessera(&["migrate", "--meta", &require, "--meta-ca", ca.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The system's CAs do not know the cluster's certificate.
    let out = tessera(&["migrate", "--meta", &require], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect") && stderr.to_lowercase().contains("certificate"), "{stderr}");

    // The right certificate, but not for the name connected to.
    let port = db.base.rsplit(':').next().unwrap().split('/').next().unwrap();
    let wrong_name = format!(
        "postgres://tessera@not-the-server.test:{port}/postgres?hostaddr=127.0.0.1&sslmode=require&options=-c%20search_path%3D{}",
        db.schema
    );
    let out = tessera(&["migrate", "--meta", &wrong_name, "--meta-ca", ca.to_str().unwrap()], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect") && stderr.to_lowercase().contains("certificate"), "{stderr}");
}
