#!/usr/bin/env bash
# POST Object (browser form uploads): boto3's generate_presigned_post (SigV4
# and SigV2) posted with requests; policy conditions, redirects, checksums and
# every violation refused with nothing stored.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin post-object
run_program "post-object scenario" python3 "$S3T_DIR/py/post_object_scenario.py"
scenario_end
