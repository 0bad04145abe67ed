#!/usr/bin/env bash
# Crash consistency with boto3 (the real-client twin of tests/kill_loop.rs): client
# threads loop over PutObject, CopyObject, DeleteObjects and the multipart
# operations while the server is killed with SIGKILL at random moments
# (S3T_CRASH_KILLS, default 200; S3T_CRASH_LONG=1 for 2,000) and restarted on the
# same data folder; after each restart every acknowledged write must read back
# byte-exact, every operation in doubt whole (old or new), every acknowledged part
# listed. At the end everything is deleted: no blob file is left and
# `tessera scrub` passes. The Python script owns the server process.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin crash-boto3
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: there is no server to kill, so this scenario checks nothing"
    scenario_end
fi
step "hand the data folder over to the crash harness (it starts, kills and restarts tessera itself)"
stop_server
export TESSERA_BIN
run_program "crash-boto3 harness" python3 "$S3T_DIR/py/crash_boto3_scenario.py"
scenario_end
