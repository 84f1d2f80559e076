#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit tests, CLI tests and the multi-process tests
# (real huren-node processes on 127.0.0.1). Debug build; about 5 minutes from cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
# The multi-process tests start the built binaries, so build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
