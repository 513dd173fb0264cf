#!/usr/bin/env bash
# Runs OpenAI's official `openai` Python SDK (from PyPI) against the debug
# FastGate binary in demo form on a loopback port (.ci/sdk/with_gateway.sh):
# the Responses API (responses.create, streaming, responses.stream) translated
# to the built-in mock's Chat Completions, and Chat Completions itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! python3 -c 'import openai' 2>/dev/null; then
  timeout 300 python3 -m pip install -q --disable-pip-version-check openai
fi
bash .ci/sdk/with_gateway.sh python3 .ci/sdk/openai_check.py
