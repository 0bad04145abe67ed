# shellcheck shell=bash
# shellcheck disable=SC2034 # the key lists are used by the scenarios that source this file
# Common helpers for the S3 compatibility scenarios. Source it, do not run it.
#
#   scenario_begin NAME   fresh temp dir + test files + fresh tessera server
#   scenario_end          stop the server (SIGTERM, exit code must be 0), print
#                         the verdict, exit non-zero if any check failed
#
# Checks never abort the scenario: each failed check is counted and reported,
# so one run shows every broken step. Print what each step checks.

S3T_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$S3T_DIR/.." && pwd)"
TESSERA_BIN="${TESSERA_BIN:-$REPO_ROOT/target/release/tessera}"

# Fixed test credentials (the secret has '/' and '+' on purpose).
TEST_ACCESS_KEY="TESSERACOMPATTESTKEY"
TEST_SECRET_KEY="tessera/compat+Secret0123456789abcdefghij"
TEST_REGION="us-east-1"
TEST_BUCKET="compat"
BAD_BUCKET="Bad_Bucket"

# Every CA-bundle variable this machine sets. Some plain-HTTP clients break on
# them (rclone's aws-sdk-go refuses AWS_CA_BUNDLE with a custom transport).
CA_VARS=(AWS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE
    NODE_EXTRA_CA_CERTS NIX_SSL_CERT_FILE HTTPLIB2_CA_CERTS GIT_SSL_CAINFO
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE)

# without_ca_vars CMD...: run CMD with every CA-bundle variable unset.
without_ca_vars() {
    local args=() v
    for v in "${CA_VARS[@]}"; do args+=(-u "$v"); done
    env "${args[@]}" "$@"
}

FAILURES=0
CHECKS=0
SERVER_PID=""
WORK=""

log() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

pass() {
    CHECKS=$((CHECKS + 1))
    printf '  ok    %s\n' "$1"
}

fail() {
    CHECKS=$((CHECKS + 1))
    FAILURES=$((FAILURES + 1))
    printf '  FAIL  %s\n' "$1"
    shift
    local line
    for line in "$@"; do printf '        %s\n' "$line"; done
}

# assert_eq LABEL ACTUAL EXPECTED
assert_eq() {
    if [[ "$2" == "$3" ]]; then
        pass "$1"
    else
        fail "$1" "expected: $3" "actual:   $2"
    fi
}

# assert_contains LABEL HAYSTACK NEEDLE
assert_contains() {
    if [[ "$2" == *"$3"* ]]; then
        pass "$1"
    else
        fail "$1" "expected to contain: $3" "actual: $(printf '%s' "$2" | head -c 2000)"
    fi
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
md5_of() { md5sum "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }

# assert_same_file LABEL EXPECTED_FILE ACTUAL_FILE: same size and SHA-256.
assert_same_file() {
    if [[ ! -f "$3" ]]; then
        fail "$1" "file was not written: $3"
        return
    fi
    local es as eh ah
    es=$(size_of "$2") as=$(size_of "$3")
    eh=$(sha256_of "$2") ah=$(sha256_of "$3")
    if [[ "$es" == "$as" && "$eh" == "$ah" ]]; then
        pass "$1 ($as bytes, sha256 ${ah:0:16}…)"
    else
        fail "$1" "expected: $es bytes sha256 $eh" "actual:   $as bytes sha256 $ah"
    fi
}

# run_ok LABEL CMD...: the command must exit 0. Its stdout goes to $OUT,
# stderr to $ERR (also kept in $WORK/last.out and $WORK/last.err).
OUT="" ERR=""
run_ok() {
    local label="$1" rc=0
    shift
    run_to_file "$label" "$WORK/last.out" "$@" || rc=$?
    OUT="$(cat "$WORK/last.out")"
    ERR="$(cat "$WORK/last.err")"
    return "$rc"
}

# run_to_file LABEL FILE CMD...: the command must exit 0; its stdout goes to FILE.
run_to_file() {
    local label="$1" file="$2" rc=0
    shift 2
    "$@" >"$file" 2>"$WORK/last.err" || rc=$?
    if [[ $rc -eq 0 ]]; then
        pass "$label"
        return 0
    fi
    fail "$label" "command: $*" "exit code $rc" "stderr: $(tail -c 2000 "$WORK/last.err")"
    return 1
}

# run_err LABEL NEEDLE CMD...: the command must exit non-zero and print NEEDLE
# (typically the S3 error code) on stdout or stderr.
run_err() {
    local label="$1" needle="$2" rc=0
    shift 2
    "$@" >"$WORK/last.out" 2>"$WORK/last.err" || rc=$?
    OUT="$(cat "$WORK/last.out")"
    ERR="$(cat "$WORK/last.err")"
    if [[ $rc -eq 0 ]]; then
        fail "$label" "command: $*" "expected failure with $needle, but it exited 0"
        return 1
    fi
    if [[ "$OUT$ERR" == *"$needle"* ]]; then
        pass "$label"
        return 0
    fi
    fail "$label" "command: $*" "exit code $rc, expected output containing: $needle" \
        "stdout: $(tail -c 1000 "$WORK/last.out")" "stderr: $(tail -c 1000 "$WORK/last.err")"
    return 1
}

# make_test_files DIR: the payloads every scenario uploads (random bytes).
make_test_files() {
    local dir="$1"
    mkdir -p "$dir"
    : >"$dir/empty.bin"
    head -c 1 /dev/urandom >"$dir/one.bin"
    head -c $((5 * 1024 * 1024 - 1)) /dev/urandom >"$dir/5mib-minus-1.bin"
    head -c $((5 * 1024 * 1024)) /dev/urandom >"$dir/5mib.bin"
    head -c $((20 * 1024 * 1024)) /dev/urandom >"$dir/20mib.bin"
    printf 'hello from the tessera compatibility tests\n' >"$dir/top.txt"
}

# make_random_file PATH MIB: a file of MIB MiB of random bytes.
make_random_file() { head -c $(($2 * 1024 * 1024)) /dev/urandom >"$1"; }

# multipart_etag FILE CHUNK_BYTES: the ETag S3 gives FILE uploaded in parts of
# CHUNK_BYTES (the last one shorter), computed locally: md5 of the binary part
# MD5s, then '-' and the part count, quoted.
multipart_etag() {
    python3 - "$1" "$2" <<'PY'
import hashlib, sys
path, chunk = sys.argv[1], int(sys.argv[2])
digests = []
with open(path, "rb") as f:
    while True:
        part = f.read(chunk)
        if not part:
            break
        digests.append(hashlib.md5(part).digest())
print(f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"')
PY
}

# composite_crc32 FILE CHUNK_BYTES: the COMPOSITE x-amz-checksum-crc32 of FILE
# uploaded in parts of CHUNK_BYTES: base64 of the CRC32 of the big-endian part
# CRC32s, then '-' and the part count (client-pitfalls.md item 5).
composite_crc32() {
    python3 - "$1" "$2" <<'PY'
import base64, sys, zlib
path, chunk = sys.argv[1], int(sys.argv[2])
crcs = []
with open(path, "rb") as f:
    while True:
        part = f.read(chunk)
        if not part:
            break
        crcs.append(zlib.crc32(part).to_bytes(4, "big"))
print(base64.b64encode(zlib.crc32(b"".join(crcs)).to_bytes(4, "big")).decode() + f"-{len(crcs)}")
PY
}

# slice_of FILE OFFSET LENGTH: LENGTH bytes of FILE from byte OFFSET, on stdout.
slice_of() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }

# rclone_env: point the rclone remote 't:' at $ENDPOINT (path style, no config
# file: everything comes from RCLONE_CONFIG_T_* variables). Use it through rc_base.
rclone_env() {
    : >"$WORK/rclone.conf"
    export RCLONE_CONFIG_T_TYPE=s3 RCLONE_CONFIG_T_PROVIDER=Other RCLONE_CONFIG_T_ENV_AUTH=false
    export RCLONE_CONFIG_T_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
    export RCLONE_CONFIG_T_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
    export RCLONE_CONFIG_T_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_T_REGION="$TEST_REGION"
    export RCLONE_CONFIG_T_FORCE_PATH_STYLE=true
}

# s3cmd_env: write $WORK/s3cfg for $ENDPOINT (path style, SigV4) and define
# s3c, s3cmd with that config.
s3cmd_env() {
    local hostport="${ENDPOINT#http://}"
    cat >"$WORK/s3cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hostport
host_bucket = $hostport
use_https = False
signature_v2 = False
bucket_location = $TEST_REGION
CFG
    s3c() { s3cmd -c "$WORK/s3cfg" --no-progress "$@"; }
}

# run_program LABEL CMD...: a scenario program that prints its own PASS/FAIL
# lines; one more line says whether it succeeded as a whole.
run_program() {
    local label="$1"
    shift
    if "$@"; then
        pass "$label"
    else
        fail "$label (see the FAIL lines above)"
    fi
}

# make_users NAME...: `tessera user add NAME --json` on the running server's data
# folder for each NAME, its keys kept in $WORK/NAME.json.
make_users() {
    local who
    for who in "$@"; do
        if run_ok "tessera user add $who --json" env TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" \
            TESSERA_SECRET_KEY="$TEST_SECRET_KEY" "$TESSERA_BIN" user add "$who" --data "$WORK/data" --json; then
            printf '%s' "$OUT" >"$WORK/$who.json"
        fi
    done
}

# console_url: the web console's address from the server's "Console: URL" line
# (start the server with TESSERA_CONSOLE set), without a trailing slash.
console_url() {
    local url
    url="$(sed -n 's|^Console: *\(http[^ ]*\).*|\1|p' "$WORK/server.out" | head -n 1)"
    printf '%s' "${url%/}"
}

# run_rust_sdk LABEL [MODE]: build the aws-sdk-rust scenario (run.sh has
# usually built it already) and run it, in MODE if given.
run_rust_sdk() {
    local label="$1" start=$SECONDS
    shift
    step "build the aws-sdk-rust scenario (cargo build --release --locked)"
    run_ok "cargo build --release --locked in rust-sdk/" \
        cargo build --release --locked --quiet --manifest-path "$S3T_DIR/rust-sdk/Cargo.toml"
    log "  build took $((SECONDS - start)) s"
    local bin="$S3T_DIR/rust-sdk/target/release/tessera-compat-rust-sdk"
    if [[ -x $bin ]]; then
        step "run tessera-compat-rust-sdk${1:+ $1} against $ENDPOINT"
        run_program "$label" "$bin" "$@"
    fi
}

# aws_v1_bin: the aws-cli v1 script installed by pip beside the python3 on PATH
# (with pyenv: /root/.pyenv/versions/X/bin/aws). $AWSCLI_V1 overrides it.
aws_v1_bin() {
    printf '%s' "${AWSCLI_V1:-$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "aws"))')}"
}

# The shared key layout (see README.md). Sizes are uploaded from FILES_DIR.
SIZE_KEYS=(sizes/empty.bin sizes/one.bin sizes/5mib-minus-1.bin sizes/5mib.bin sizes/20mib.bin)
HOSTILE_KEYS=(
    "hostile/with space.txt"
    "hostile/é/日本語.txt"
    "hostile/plus+sign.txt"
    "hostile/percent%20literal.txt"
    "hostile/amp&ersand.txt"
    'hostile/quote".txt'
    "hostile/a//b.txt"
    "/leading-slash.txt"
    "../x"
)
MARKER_KEY="dir/"
# Content of a hostile-key object: derived from its key, so a mix-up shows.
hostile_content() { printf 'key:%s\n' "$1"; }
# local_file_for_key KEY: a file holding hostile_content KEY.
local_file_for_key() {
    local f
    f="$WORK/hostile/$(printf '%s' "$1" | sha256sum | cut -c1-16)"
    mkdir -p "$WORK/hostile"
    [[ -f "$f" ]] || hostile_content "$1" >"$f"
    printf '%s' "$f"
}

# Every key after the uploads, in S3 (UTF-8 byte) order.
sorted_lines() { LC_ALL=C sort; }
join_lines() { paste -sd '|' -; }

# start_server [LISTEN]: start tessera on LISTEN (default 127.0.0.1:0, a free
# port) with the data folder $WORK/data, and export ENDPOINT. The server's
# stderr is appended to $WORK/server.log, so a restart keeps the earlier log.
start_server() {
    local listen="${1:-127.0.0.1:0}"
    [[ -x "$TESSERA_BIN" ]] || {
        fail "tessera binary exists at $TESSERA_BIN (run: cargo build --release)"
        return 1
    }
    mkdir -p "$WORK/data"
    TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" TESSERA_SECRET_KEY="$TEST_SECRET_KEY" \
        "$TESSERA_BIN" serve --listen "$listen" --data "$WORK/data" --region "$TEST_REGION" \
        >"$WORK/server.out" 2>>"$WORK/server.log" &
    SERVER_PID=$!
    local deadline=$((SECONDS + 20)) addr=""
    while ((SECONDS < deadline)); do
        addr=$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$WORK/server.out" | head -n 1)
        [[ -n "$addr" ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" || true
            SERVER_PID=""
            fail "server starts" "tessera exited before listening; its stderr:" \
                "$(tail -n 20 "$WORK/server.log")"
            return 1
        fi
        sleep 0.1
    done
    if [[ -z "$addr" ]]; then
        fail "server prints 'listening on http://ADDR' within 20 s" \
            "stdout: $(cat "$WORK/server.out")" "stderr: $(tail -n 20 "$WORK/server.log")"
        return 1
    fi
    export ENDPOINT="http://$addr"
    export SERVER_PID
    pass "server listening on $ENDPOINT (pid $SERVER_PID)"
}

# kill_server_hard: SIGKILL the server (a crash: no shutdown code runs) and reap it.
kill_server_hard() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    log "  server pid $SERVER_PID killed with SIGKILL"
    SERVER_PID=""
}

# restart_server: start tessera again on the same address and data folder
# (after kill_server_hard or stop_server).
restart_server() {
    start_server "${ENDPOINT#http://}"
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID" rc=0
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        fail "server exits within 10 s of SIGTERM" "it had to be killed"
        return
    fi
    wait "$pid" || rc=$?
    assert_eq "server exits with code 0 after SIGTERM" "$rc" 0
}

_scenario_cleanup() {
    # Runs on any exit: never leave a server behind.
    if [[ -n "$SERVER_PID" ]]; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$WORK" && -d "$WORK" && "${S3T_KEEP:-0}" != 1 ]]; then
        rm -rf "$WORK"
    fi
}

# scenario_begin NAME: fresh temp dir, test files, server, client environment.
# With S3_COMPAT_ENDPOINT set, no server is started and that endpoint is used
# instead (to check the tests themselves against another S3 implementation).
scenario_begin() {
    SCENARIO="$1"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/tessera-compat-$SCENARIO.XXXXXX")"
    export WORK
    trap _scenario_cleanup EXIT
    FILES_DIR="$WORK/files"
    export FILES_DIR
    make_test_files "$FILES_DIR"
    export AWS_ACCESS_KEY_ID="$TEST_ACCESS_KEY"
    export AWS_SECRET_ACCESS_KEY="$TEST_SECRET_KEY"
    export AWS_DEFAULT_REGION="$TEST_REGION"
    export AWS_REGION="$TEST_REGION"
    export AWS_EC2_METADATA_DISABLED=true
    # Keep the user's own AWS configuration out of the tests.
    export AWS_CONFIG_FILE="$WORK/aws-config"
    export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
    : >"$AWS_CONFIG_FILE"
    : >"$AWS_SHARED_CREDENTIALS_FILE"
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
    export TEST_BUCKET BAD_BUCKET
    log "scenario $SCENARIO (work dir $WORK)"
    if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
        export ENDPOINT="$S3_COMPAT_ENDPOINT"
        log "using external endpoint $ENDPOINT (no tessera server started)"
    else
        start_server || scenario_end
    fi
}

scenario_end() {
    stop_server
    if [[ $FAILURES -ne 0 && -f "$WORK/server.log" ]]; then
        log ""
        log "-- last lines of the server log ($WORK/server.log):"
        tail -n 30 "$WORK/server.log" | sed 's/^/   | /'
    fi
    log ""
    if [[ $FAILURES -eq 0 ]]; then
        log "scenario $SCENARIO: all $CHECKS checks passed"
        exit 0
    fi
    log "scenario $SCENARIO: $FAILURES of $CHECKS checks FAILED"
    exit 1
}
