#!/usr/bin/env bash
# The project's test command: the layering check, format and lint checks,
# every Rust test of the workspace (unit, integration against real mock
# servers, the async-openai client), then the official `openai` Python
# package against the quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/check-layers.py
python3 scripts/check-dockerfile.py
cargo fmt --all --check
cargo clippy --workspace --locked --all-targets -- -D warnings
cargo test --workspace --locked

# The Python SDK check needs `openai`; install it for this user if missing.
if ! python3 -c 'import openai' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check 'openai==3.57.0'
fi
cargo build --locked -p gateway-mock
python3 crates/gateway/tests/python/test_openai_sdk.py target/debug/gateway-mock
