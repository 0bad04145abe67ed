#!/usr/bin/env bash
# aws-sdk-rust (crates aws-sdk-s3 + aws-config, from crates.io): the standalone
# cargo project in ../rust-sdk, built in release mode into rust-sdk/target.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin rust-sdk
step "build the aws-sdk-rust scenario (cargo build --release --locked)"
start=$SECONDS
run_ok "cargo build --release --locked in rust-sdk/" \
    cargo build --release --locked --quiet --manifest-path "$S3T_DIR/rust-sdk/Cargo.toml"
log "  build took $((SECONDS - start)) s"
if [[ -x "$S3T_DIR/rust-sdk/target/release/tessera-compat-rust-sdk" ]]; then
    step "run it against $ENDPOINT"
    if "$S3T_DIR/rust-sdk/target/release/tessera-compat-rust-sdk"; then
        pass "aws-sdk-rust scenario"
    else
        fail "aws-sdk-rust scenario (see the FAIL lines above)"
    fi
fi
scenario_end
