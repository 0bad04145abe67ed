#!/usr/bin/env bash
# AWS SDK for JavaScript v3 (@aws-sdk/client-s3 + lib-storage, npm), on node.
# Stream bodies make it send aws-chunked with a CRC32 trailer (its default).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin js-sdk
log "node $(node --version), @aws-sdk/client-s3 $(cd "$S3T_DIR/js" && node -p 'require("@aws-sdk/client-s3/package.json").version')"
if node "$S3T_DIR/js/scenario.mjs"; then
    pass "js-sdk scenario"
else
    fail "js-sdk scenario (see the FAIL lines above)"
fi
scenario_end
