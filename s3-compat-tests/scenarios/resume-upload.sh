#!/usr/bin/env bash
# Resume a multipart upload after a server crash (boto3): parts 1, 2 and 4 are
# acknowledged, part 3 is cut by SIGKILL halfway through its body; the server
# restarts on the same port and data folder; ListMultipartUploads/ListParts must
# show exactly the acknowledged parts (ETag, size, CRC32); the missing parts are
# uploaded, the upload completed and the download's SHA-1 compared with the source.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin resume-upload
step "phase 1: upload part of the object, then crash the server mid-part"
run_program "resume-upload phase 1" python3 "$S3T_DIR/py/resume_upload_scenario.py" before
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint: no server to crash or restart"
else
    step "restart tessera on the same address and data folder"
    before_endpoint="$ENDPOINT"
    kill_server_hard
    restart_server || scenario_end
    assert_eq "restarted on the same address" "$ENDPOINT" "$before_endpoint"
fi
step "phase 2: resume"
run_program "resume-upload phase 2" python3 "$S3T_DIR/py/resume_upload_scenario.py" after
scenario_end
