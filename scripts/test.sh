#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit tests, CLI tests and the multi-process tests
# (real huren-node processes on 127.0.0.1). Debug build; about 5 minutes from cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
# The browser test (tests/tests/browser.rs) drives the service-window page in headless
# Chromium through chromedriver, both from Debian, plus a CJK font so that its screenshots
# show Chinese; the benchmark smoke test drives verify load with wrk and runs its
# central-database baseline on PostgreSQL and its instruction counts under valgrind; the fault drills (tests/tests/chaos.rs) put
# nodes in network namespaces with iproute2 and shift their clocks with libfaketime.
# Installed here, once: a no-op when they are already there.
packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
dpkg-query -W -f='${Status}' fonts-wqy-microhei 2>/dev/null | grep -q 'ok installed' \
  || packages+=(fonts-wqy-microhei)
command -v wrk >/dev/null 2>&1 || packages+=(wrk)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || packages+=(postgresql)
command -v valgrind >/dev/null 2>&1 || packages+=(valgrind)
command -v ip >/dev/null 2>&1 || packages+=(iproute2)
ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || packages+=(faketime)
if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${packages[*]} for the browser, benchmark and fault-drill tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${packages[@]}"
  else
    echo "warning: ${packages[*]} missing and cannot be installed here (needs root" \
      "and apt-get); the browser test will fail, the benchmark uses its own load generator" \
      "and, without PostgreSQL, its smoke test fails for want of the baseline; the fault" \
      "drills run on loopback and/or without clock offsets" >&2
  fi
fi
# The node's OpenAPI test (node/src/api/openapi_tests.rs) validates /openapi.json with
# openapi-spec-validator, a validator independent of utoipa; without it that test fails.
if ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  echo "installing openapi-spec-validator for the OpenAPI document test" >&2
  python3 -m pip install --quiet openapi-spec-validator==0.9.0 \
    || python3 -m pip install --quiet --break-system-packages openapi-spec-validator==0.9.0 || {
    echo "could not install openapi-spec-validator (it needs Python >= 3.10; a distribution's" \
      "python3 may refuse pip installs: use a virtualenv, or set HUREN_SKIP_OPENAPI_VALIDATOR=1)" >&2
    exit 1
  }
fi
# The multi-process tests start the built binaries, so build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
