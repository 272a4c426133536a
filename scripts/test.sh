#!/usr/bin/env bash
# The project's test command: the layering check, format and lint checks,
# every Rust test of the workspace (unit, integration against real mock
# servers, the async-openai client), then the official `openai` and
# `anthropic` Python packages against the gateway-mock quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/check-layers.py
python3 scripts/check-dockerfile.py
cargo fmt --all --check
cargo clippy --workspace --locked --all-targets -- -D warnings
cargo test --workspace --locked

# The Python SDK checks need `openai` and `anthropic`; install the pinned
# versions for this user if either is missing.
if ! python3 -c 'import openai, anthropic' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check -r crates/gateway/tests/python/requirements.txt
fi
cargo build --locked -p gateway-mock
python3 crates/gateway/tests/python/test_openai_sdk.py target/debug/gateway-mock
python3 crates/gateway/tests/python/test_anthropic_sdk.py target/debug/gateway-mock
