#!/usr/bin/env bash
# Seeded fault drills (docs/chaos.md): each seed draws a scenario of partitions (two-way and
# one-way), links set down, SIGKILLs and restarts, a slow lossy link and clock offsets, runs
# the example network's six nodes through it under issuance and revocation load, then checks
# that every acknowledged record is on every node, heads are identical within 10 s of the last
# heal, no block height holds two blocks, and `huren-node check` passes.
#
# Usage: scripts/chaos.sh [--seeds N] [--first S] [--seed S ...] [--phase-secs SECS]
#                         [--lab netns|loopback|auto] [--keep-logs] [--quiet]
# Real partitions need root and iproute2 (network namespaces); elsewhere it says so and
# falls back to loopback faults. Clock offsets need libfaketime (Debian package faketime).
# A failed seed's plan and node logs stay in target/chaos/seed-N/.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || missing+=(faketime)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the fault drills" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q "${missing[@]}"
  else
    echo "warning: ${missing[*]} missing (needs root and apt-get to install): the drills" \
      "fall back to loopback faults and/or run without clock offsets" >&2
  fi
fi
cargo build --workspace --bins
exec nice -n "${HUREN_CHAOS_NICE:-0}" target/debug/huren-chaos "$@"
