#!/usr/bin/env bash
# aws-sdk-rust low-level multipart: 'tessera-compat-rust-sdk multipart' (the same
# binary as the rust-sdk scenario, in its multipart mode). run.sh builds it.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin multipart-rust-sdk
run_rust_sdk "aws-sdk-rust multipart scenario" multipart
scenario_end
