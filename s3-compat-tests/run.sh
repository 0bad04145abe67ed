#!/usr/bin/env bash
# Runs the S3 compatibility scenarios against a freshly built tessera.
#
#   s3-compat-tests/run.sh                 # every scenario
#   s3-compat-tests/run.sh boto3 rclone    # some of them
#
# Builds target/release/tessera once, installs any missing client, runs each
# scenario (its own server and temp dir), prints a summary and, as the last
# line, "N passed, M failed". Exits non-zero if any scenario failed.
set -euo pipefail

S3T_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$S3T_DIR/.." && pwd)"
ALL_SCENARIOS=(awscli-v2 awscli-v1 boto3 presigned rclone s3cmd js-sdk rust-sdk
    multipart-awscli-v2 multipart-awscli-v1 multipart-boto3 resume-upload multipart-rclone
    multipart-s3cmd multipart-js-sdk multipart-rust-sdk resume-download
    versioning-boto3 versioning-awscli versioning-rclone versioning-js-sdk tagging-boto3 acl-boto3 dedup-boto3
    instant-boto3 cp-tessera crash-boto3 post-object gateways-postgres cors-browser console-browser console-firefox)
TIMEOUT="${S3T_TIMEOUT:-900}" # seconds per scenario
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/tessera-compat-logs.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT

if [[ $# -gt 0 ]]; then SCENARIOS=("$@"); else SCENARIOS=("${ALL_SCENARIOS[@]}"); fi
for s in "${SCENARIOS[@]}"; do
    if [[ ! -f "$S3T_DIR/scenarios/$s.sh" ]]; then
        echo "unknown scenario '$s'; known: ${ALL_SCENARIOS[*]}" >&2
        exit 2
    fi
done

# quietly LABEL CMD...: run CMD with its output in a log; show the log if it fails.
quietly() {
    local label="$1" log
    shift
    log="$LOGS/$(tr -c 'a-zA-Z0-9' '_' <<<"$label").log"
    echo "-- $label"
    if ! "$@" >"$log" 2>&1; then
        echo "FAILED: $label (command: $*); its output:" >&2
        cat "$log" >&2
        echo "0 passed, ${#SCENARIOS[@]} failed"
        exit 1
    fi
}

wants() { # wants SCENARIO...: true if any of them was selected
    local s w
    for s in "${SCENARIOS[@]}"; do for w in "$@"; do [[ $s == "$w" ]] && return 0; done; done
    return 1
}

install_clients() {
    # Debian packages: aws-cli v2 (/usr/bin/aws), rclone, s3cmd, wget, and the tools the
    # scripts use. Some scenarios use aws-cli v2 to look at what another client did.
    local apt_pkgs=()
    wants awscli-v2 multipart-awscli-v2 multipart-rclone multipart-s3cmd resume-download versioning-awscli \
        versioning-rclone acl-boto3 dedup-boto3 instant-boto3 cp-tessera gateways-postgres &&
        [[ ! -x /usr/bin/aws ]] && apt_pkgs+=(awscli)
    wants rclone multipart-rclone versioning-rclone gateways-postgres && ! command -v rclone >/dev/null && apt_pkgs+=(rclone)
    wants s3cmd multipart-s3cmd && ! command -v s3cmd >/dev/null && apt_pkgs+=(s3cmd)
    wants resume-download && ! command -v wget >/dev/null && apt_pkgs+=(wget)
    wants cors-browser console-browser && [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]] &&
        apt_pkgs+=(chromium chromium-driver)
    wants console-firefox && [[ ! -x /usr/bin/firefox-esr ]] && apt_pkgs+=(firefox-esr)
    command -v jq >/dev/null || apt_pkgs+=(jq)
    command -v curl >/dev/null || apt_pkgs+=(curl)
    command -v openssl >/dev/null || apt_pkgs+=(openssl)
    if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
        quietly "apt-get update" apt-get update -qq
        quietly "apt-get install ${apt_pkgs[*]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}"
    fi

    # PyPI: boto3 and aws-cli v1 (its 'aws' script sits beside the python3 on PATH).
    local v1
    v1="$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "aws"))')"
    if wants awscli-v1 boto3 presigned multipart-awscli-v1 multipart-boto3 resume-upload resume-download \
        versioning-boto3 tagging-boto3 acl-boto3 dedup-boto3 instant-boto3 crash-boto3 gateways-postgres cors-browser &&
        { ! python3 -c 'import boto3' 2>/dev/null || [[ ! -x "$v1" ]]; }; then
        quietly "pip install awscli boto3" python3 -m pip install -q awscli boto3
    fi
    if wants post-object && ! python3 -c 'import boto3, requests' 2>/dev/null; then
        quietly "pip install boto3 requests" python3 -m pip install -q boto3 requests
    fi

    # npm: the JavaScript SDK v3, pinned by js/package-lock.json.
    if wants js-sdk multipart-js-sdk versioning-js-sdk && [[ ! -d "$S3T_DIR/js/node_modules/@aws-sdk/client-s3" ||
        ! -d "$S3T_DIR/js/node_modules/@aws-sdk/lib-storage" ]]; then
        quietly "npm ci (js/)" npm ci --prefix "$S3T_DIR/js" --no-audit --no-fund --loglevel=error
    fi
    # npm: playwright-core (it drives Debian's Chromium) and puppeteer-core (it drives
    # Debian's Firefox ESR over WebDriver BiDi); neither downloads a browser.
    if wants cors-browser console-browser console-firefox &&
        [[ ! -d "$S3T_DIR/browser/node_modules/playwright-core" || ! -d "$S3T_DIR/browser/node_modules/puppeteer-core" ]]; then
        quietly "npm ci (browser/)" npm ci --prefix "$S3T_DIR/browser" --no-audit --no-fund --loglevel=error
    fi
}

echo "== installing missing clients"
install_clients
# test.sh installs the clients that cargo's tests use (tests/tls.rs) first.
[[ ${S3T_INSTALL_ONLY:-} == 1 ]] && exit 0

if [[ -n "${TESSERA_BIN:-}" ]]; then
    # A binary given is the one tested: building another would be wasted.
    echo "== testing TESSERA_BIN=$TESSERA_BIN (no build)"
    [[ -x "$TESSERA_BIN" ]] || { echo "TESSERA_BIN is not an executable file" >&2; exit 2; }
else
    echo "== building tessera (cargo build --release --locked)"
    start=$SECONDS
    quietly "cargo build --release --locked" cargo build --release --locked --manifest-path "$REPO_ROOT/Cargo.toml"
    echo "   took $((SECONDS - start)) s"
fi

if wants rust-sdk multipart-rust-sdk; then
    echo "== building the aws-sdk-rust scenario (rust-sdk/, release)"
    start=$SECONDS
    quietly "cargo build --release --locked (rust-sdk/)" \
        cargo build --release --locked --manifest-path "$S3T_DIR/rust-sdk/Cargo.toml"
    echo "   took $((SECONDS - start)) s"
fi

passed=0
failed=0
summary=()
for s in "${SCENARIOS[@]}"; do
    echo
    echo "################ scenario $s"
    start=$SECONDS
    rc=0
    timeout --kill-after=10 "$TIMEOUT" bash "$S3T_DIR/scenarios/$s.sh" || rc=$?
    took=$((SECONDS - start))
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        summary+=("$(printf 'PASS  %-19s %4d s' "$s" "$took")")
    else
        failed=$((failed + 1))
        why="exit $rc"
        [[ $rc -eq 124 || $rc -eq 137 ]] && why="timed out after $TIMEOUT s"
        summary+=("$(printf 'FAIL  %-19s %4d s  (%s)' "$s" "$took" "$why")")
    fi
done

echo
echo "================ S3 compatibility summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
