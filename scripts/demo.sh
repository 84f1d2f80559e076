#!/usr/bin/env bash
# The main job: a local Huren network of real department nodes on 127.0.0.1. Issues a
# driving licence in Guangdong, verifies it in Shanghai, suspends, reinstates and revokes
# it, shows every chain head, then keeps the network running until Ctrl-C.
# Usage: scripts/demo.sh [--no-wait] [--png FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
cargo build --release --workspace --bins
exec target/release/huren-demo "$@"
