#!/usr/bin/env bash
# The web console (issue 16) in Firefox: Debian's Firefox ESR, headless, driven
# over WebDriver BiDi by puppeteer-core (browser/firefox-console.mjs), signs in
# as alice, creates a bucket, uploads a 20 MiB file as a multipart upload,
# pauses it with parts held back, reloads the page, chooses the file again and
# checks that only the parts the server lacked were sent, downloads it (SHA-256
# of the bytes the page saved), and signs in as bob, who sees no bucket. The
# longer Chromium run is console-browser. run.sh installs firefox-esr and
# puppeteer-core when missing.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

# The console listener on a free port of its own (read back from the server's
# "Console: URL" line).
export TESSERA_CONSOLE=127.0.0.1:0

scenario_begin console-firefox
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: it has no tessera console, so this scenario checks nothing"
    scenario_end
fi

CONSOLE_URL="$(console_url)"
if [[ -z $CONSOLE_URL ]]; then
    fail "the server prints its console address (Console: URL)" "stdout: $(cat "$WORK/server.out")"
    scenario_end
fi

step "make the users alice and bob: tessera user add NAME --data DIR --json (server running)"
make_users alice bob
make_random_file "$WORK/firefox.bin" 20

if [[ ! -d "$S3T_DIR/browser/node_modules/puppeteer-core" ]]; then
    run_ok "npm ci (browser/)" npm ci --prefix "$S3T_DIR/browser" --no-audit --no-fund --loglevel=error
fi
step "run browser/firefox-console.mjs (headless Firefox ESR)"
log "$(/usr/bin/firefox-esr --version 2>/dev/null), node $(node --version)," \
    "puppeteer-core $(node -p 'require(process.argv[1]).version' "$S3T_DIR/browser/node_modules/puppeteer-core/package.json")"
CONSOLE_URL="$CONSOLE_URL" run_program "console-firefox scenario" node "$S3T_DIR/browser/firefox-console.mjs"
scenario_end
