#!/usr/bin/env bash
# The project's test command: format and lint checks, every Rust test
# (unit, integration against real mock servers, the async-openai client),
# then the official `openai` Python package against the quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked

# The Python SDK check needs `openai`; install it for this user if missing.
if ! python3 -c 'import openai' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check 'openai==3.57.0'
fi
cargo build --locked --bin gateway-mock
python3 tests/python/test_openai_sdk.py target/debug/gateway-mock
