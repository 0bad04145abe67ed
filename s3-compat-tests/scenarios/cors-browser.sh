#!/usr/bin/env bash
# CORS in a real browser (issue 15): Debian's Chromium, headless, driven by
# playwright-core (npm, browser/), loads a page from another origin that
# uploads to tessera with presigned URLs (a PUT and a multipart upload),
# reads both back and compares SHA-256 in the page; the same upload must
# fail without the bucket's CORS rules, and the multipart upload without
# ExposeHeaders ETag. run.sh installs chromium, chromium-driver and
# playwright-core when missing.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin cors-browser
log "$(/usr/bin/chromium --version 2>/dev/null), node $(node --version)," \
    "playwright-core $(node -p 'require(process.argv[1]).version' "$S3T_DIR/browser/node_modules/playwright-core/package.json")"
run_program "cors-browser scenario" node "$S3T_DIR/browser/cors-browser.mjs"
scenario_end
