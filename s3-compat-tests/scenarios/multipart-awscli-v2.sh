#!/usr/bin/env bash
# aws-cli v2 (Debian package awscli, /usr/bin/aws): multipart with 'aws s3 cp'
# (100 MiB, default 8 MiB parts) and step by step with s3api; ranged and
# part-number GETs on the multipart object.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=_awscli_multipart.sh
source "$(dirname "$0")/_awscli_multipart.sh"

scenario_begin multipart-awscli-v2
awscli_multipart_scenario "${AWSCLI_V2:-/usr/bin/aws}" 2
scenario_end
