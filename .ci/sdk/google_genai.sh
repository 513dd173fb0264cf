#!/usr/bin/env bash
# Runs Google's google-genai SDK (from PyPI) against the debug FastGate binary
# in demo form on a loopback port (.ci/sdk/with_gateway.sh). Called by .ci/run
# after `cargo test`, which built target/debug/fastgate.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! python3 -c 'import google.genai' 2>/dev/null; then
  timeout 300 python3 -m pip install -q --disable-pip-version-check google-genai
fi
bash .ci/sdk/with_gateway.sh python3 .ci/sdk/google_genai_check.py
