#!/usr/bin/env bash
# aws-sdk-rust (crates aws-sdk-s3 + aws-config, from crates.io): the standalone
# cargo project in ../rust-sdk, built in release mode into rust-sdk/target.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin rust-sdk
run_rust_sdk "aws-sdk-rust scenario"
scenario_end
