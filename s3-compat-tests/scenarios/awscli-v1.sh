#!/usr/bin/env bash
# aws-cli v1 (PyPI package awscli, next to the python3 on PATH): same round trip as v2.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=_awscli.sh
source "$(dirname "$0")/_awscli.sh"

# The v1 'aws' script sits beside the python3 that pip installed it for
# (with pyenv: /root/.pyenv/versions/X/bin/aws, reached through the shim).
v1="${AWSCLI_V1:-$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "aws"))')}"

scenario_begin awscli-v1
awscli_scenario "$v1" 1
scenario_end
