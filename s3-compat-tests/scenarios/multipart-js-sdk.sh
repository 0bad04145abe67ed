#!/usr/bin/env bash
# AWS SDK for JavaScript v3 multipart: @aws-sdk/lib-storage Upload (5 MiB parts,
# queueSize 4, CRC32), GetObject whole / Range / PartNumber, a download resumed
# with an open-ended Range, Upload.abort() -> AbortMultipartUpload.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin multipart-js-sdk
log "node $(node --version), @aws-sdk/lib-storage $(cd "$S3T_DIR/js" && node -p 'require("@aws-sdk/lib-storage/package.json").version')"
run_program "multipart-js-sdk scenario" node "$S3T_DIR/js/multipart.mjs"
scenario_end
