#!/usr/bin/env bash
# One node's issuance (single and bulk) and verification (fast path, signature path) rates,
# load generated on the same machine. Usage: scripts/bench-node.sh [--seconds N] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)" >&2
target/release/huren-bench-node "$@"
