#!/usr/bin/env bash
# AWS SDK for JavaScript v3 (@aws-sdk/client-s3 + lib-storage, npm), on node.
# Stream bodies make it send aws-chunked with a CRC32 trailer (its default).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin js-sdk
log "node $(node --version), @aws-sdk/client-s3 $(cd "$S3T_DIR/js" && node -p 'require("@aws-sdk/client-s3/package.json").version')"
run_program "js-sdk scenario" node "$S3T_DIR/js/scenario.mjs"
scenario_end
