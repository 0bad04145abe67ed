#!/usr/bin/env bash
# aws-cli v1 (PyPI package awscli, next to the python3 on PATH): same round trip as v2.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=_awscli.sh
source "$(dirname "$0")/_awscli.sh"

scenario_begin awscli-v1
# The v1 'aws' script sits beside the python3 that pip installed it for (aws_v1_bin).
awscli_scenario "$(aws_v1_bin)" 1
scenario_end
