#!/usr/bin/env bash
# boto3 bucket versioning: versions, the "null" version, delete markers, paged
# ListObjectVersions, deleting versions, DeleteObjects and CopyObject with version
# ids, a versioned multipart upload, Suspended, MFADelete refused, and the cleanup.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin versioning-boto3
run_program "versioning-boto3 scenario" python3 "$S3T_DIR/py/versioning_boto3_scenario.py"
scenario_end
