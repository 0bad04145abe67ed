#!/usr/bin/env bash
# The web console (issue 16) in a real browser: Debian's Chromium, headless,
# driven by playwright-core (browser/), signs in to the console listener
# (`tessera serve --console`) as alice, creates a bucket, uploads a 50 MiB file
# as a multipart upload, pauses it, reloads the page, chooses the file again
# and checks that only the parts the server lacked were sent, downloads it
# (SHA-256 compared), makes a share link that curl fetches, uploads and
# deletes a folder, pages through a listing, and signs in as bob, who sees
# none of alice's buckets. It also takes the screenshots of docs/console.md
# into S3T_SCREENSHOTS (default: the work dir; S3T_SCREENSHOTS=$PWD/docs/console
# refreshes the docs' pictures).
# Chromium comes from Debian (run.sh installs it for the browser scenarios);
# playwright-core is installed here (npm ci in browser/) when missing.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

# The console listener on a free port of its own (read back from the server's
# "Console: URL" line).
export TESSERA_CONSOLE=127.0.0.1:0

scenario_begin console-browser
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: it has no tessera console, so this scenario checks nothing"
    scenario_end
fi

step "the console listener"
CONSOLE_URL="$(console_url)"
if [[ -n $CONSOLE_URL ]]; then
    pass "the server prints its console address: $CONSOLE_URL"
else
    fail "the server prints its console address (Console: URL)" "stdout: $(cat "$WORK/server.out")"
    scenario_end
fi
page="$(curl -sS "$CONSOLE_URL/" 2>&1)"
assert_contains "GET / on the console listener serves the page" "$page" '<script type="module" src="/assets/app.js">'

step "make the users alice and bob: tessera user add NAME --data DIR --json (server running)"
make_users alice bob

step "the test files: a 50 MiB file, a folder of 12 small files in 2 subfolders"
make_random_file "$WORK/big.bin" 50
mkdir -p "$WORK/album/summer" "$WORK/album/winter"
for i in $(seq 1 6); do
    head -c $((1000 + i)) /dev/urandom >"$WORK/album/summer/photo-$i.jpg"
    head -c $((2000 + i)) /dev/urandom >"$WORK/album/winter/photo-$i.jpg"
done
log "  big.bin sha256 $(sha256_of "$WORK/big.bin")"

if [[ ! -d "$S3T_DIR/browser/node_modules/playwright-core" ]]; then
    run_ok "npm ci (browser/)" npm ci --prefix "$S3T_DIR/browser" --no-audit --no-fund --loglevel=error
fi
step "run browser/console-browser.mjs (headless Chromium)"
log "$(/usr/bin/chromium --version 2>/dev/null), node $(node --version)," \
    "playwright-core $(node -p 'require(process.argv[1]).version' "$S3T_DIR/browser/node_modules/playwright-core/package.json")"
CONSOLE_URL="$CONSOLE_URL" SCREENSHOTS="${S3T_SCREENSHOTS:-$WORK/screenshots}" \
    run_program "console-browser scenario" node "$S3T_DIR/browser/console-browser.mjs"
scenario_end
