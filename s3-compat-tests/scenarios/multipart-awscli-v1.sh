#!/usr/bin/env bash
# aws-cli v1 (PyPI package awscli, next to the python3 on PATH): the same
# multipart scenario as v2. On botocore >= 1.36 it also asks for CRC32 checksums.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=_awscli_multipart.sh
source "$(dirname "$0")/_awscli_multipart.sh"

scenario_begin multipart-awscli-v1
awscli_multipart_scenario "$(aws_v1_bin)" 1
scenario_end
