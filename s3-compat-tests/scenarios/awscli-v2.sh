#!/usr/bin/env bash
# aws-cli v2 (Debian package awscli, /usr/bin/aws): s3api round trip + aws s3 cp/ls.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=_awscli.sh
source "$(dirname "$0")/_awscli.sh"

scenario_begin awscli-v2
awscli_scenario "${AWSCLI_V2:-/usr/bin/aws}" 2
scenario_end
