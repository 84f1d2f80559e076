#!/usr/bin/env bash
# Every performance figure in one run (production profile: release + fat LTO): machine
# limits, verify and issue rates of one node, scale at 10k and 1M licences, catch-up,
# 4-node replication, QR sizes, and a central-database baseline (PostgreSQL behind
# bench/baseline). Writes bench/results.json and bench/results.md.
# Usage: scripts/bench.sh [--quick] [--licences N | --scale 10m] [--seconds S] [--out DIR]
# (--scale 10m grows the ledger to 10 million licences: about an hour on 2 cores and
# ~15 GB of disk, so it is not part of the default run.)
set -euo pipefail
cd "$(dirname "$0")/.."
# The verify load comes from wrk (Debian) when it is installed: it costs the shared cores
# far less per request than an async Rust client. Installed here when we can; without it
# the benchmark falls back to its own reqwest generator and says so in the report.
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing wrk for the verify load" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q wrk || echo "warning: wrk not installed" >&2
fi
# The central-database baseline runs on Debian's PostgreSQL (a cluster of its own in a
# temporary directory); without it that section of the report says why it is missing.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing postgresql for the central-database baseline" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q postgresql || echo "warning: postgresql not installed" >&2
fi
if ! command -v valgrind >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing valgrind for the instruction counts" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q valgrind || echo "warning: valgrind not installed" >&2
fi
cargo build --profile production --bin huren-node --bin huren-bench --bin huren-trivial --bin huren-baseline
target/production/huren-bench "$@"
