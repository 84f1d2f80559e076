#!/usr/bin/env bash
# Every performance figure in one run (release build): machine limits, verify and issue
# rates of one node, scale at 10k and 1M licences, catch-up, 4-node replication, QR sizes.
# Writes bench/results.json and bench/results.md. Usage: scripts/bench.sh [--quick] [--licences N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
target/release/huren-bench "$@"
