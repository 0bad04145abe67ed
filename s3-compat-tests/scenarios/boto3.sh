#!/usr/bin/env bash
# boto3 (PyPI): the full round trip plus listings v1/v2/versions and the transfer manager.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin boto3
run_program "boto3 scenario" python3 "$S3T_DIR/py/boto3_scenario.py"
scenario_end
