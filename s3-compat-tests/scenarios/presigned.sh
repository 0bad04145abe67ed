#!/usr/bin/env bash
# Presigned URLs from boto3 (default SigV2 for us-east-1, and s3v4) used with curl:
# GET every object, ranged GET, HEAD, PUT (incl. a signed Content-Type), rejections.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin presigned
log "curl: $(curl --version | head -n 1)"
run_program "presigned scenario" python3 "$S3T_DIR/py/presigned_scenario.py"
scenario_end
