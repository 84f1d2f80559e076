#!/usr/bin/env bash
# SIGKILL drill: kill a node at random moments while it issues, restart, check that every
# acknowledged licence survived and `huren-node check` passes. Usage: scripts/crash-drill.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-200}"
cargo build --release --workspace --bins
HUREN_CRASH_CYCLES="$cycles" cargo test --release -p huren-tests --test crash -- --nocapture
