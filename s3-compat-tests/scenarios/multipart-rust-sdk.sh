#!/usr/bin/env bash
# aws-sdk-rust low-level multipart: 'tessera-compat-rust-sdk multipart' (the same
# binary as the rust-sdk scenario, in its multipart mode). run.sh builds it.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin multipart-rust-sdk
step "build the aws-sdk-rust scenario (cargo build --release --locked)"
start=$SECONDS
run_ok "cargo build --release --locked in rust-sdk/" \
    cargo build --release --locked --quiet --manifest-path "$S3T_DIR/rust-sdk/Cargo.toml"
log "  build took $((SECONDS - start)) s"
if [[ -x "$S3T_DIR/rust-sdk/target/release/tessera-compat-rust-sdk" ]]; then
    step "run 'tessera-compat-rust-sdk multipart' against $ENDPOINT"
    if "$S3T_DIR/rust-sdk/target/release/tessera-compat-rust-sdk" multipart; then
        pass "aws-sdk-rust multipart scenario"
    else
        fail "aws-sdk-rust multipart scenario (see the FAIL lines above)"
    fi
fi
scenario_end
