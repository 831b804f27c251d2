#!/usr/bin/env bash
# The project's test command (README "Two commands"; CI runs it through .ci/run).
#
# As root it first makes the machine ready, idempotently: installs the Docker engine, Compose v2,
# caddy, the apparmor tools and tmux (.ci/install-deps.sh), starts dockerd (.ci/start-dockerd.sh)
# and builds the local stand-in images the end-to-end tests run (tests/images/build.sh; no image
# registry is reachable). Then: formatting, lints, and the whole test suite.
#
# Not root: nothing is installed; tests whose tool is missing print "SKIPPED ..." (in CI, where
# STACKGEN_REQUIRE_TOOLS=1, they fail instead).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { # NAME CMD...
  local name=$1 t0=${EPOCHREALTIME/./}
  shift
  printf '==> %s\n' "$name" >&2
  "$@"
  printf '==> %s: %d ms\n' "$name" $(( (${EPOCHREALTIME/./} - t0) / 1000 )) >&2
}

if [[ $(id -u) -eq 0 ]]; then
  step "install-deps" bash .ci/install-deps.sh
  step "start-dockerd" bash .ci/start-dockerd.sh
  step "stand-in images" bash tests/images/build.sh
elif docker info >/dev/null 2>&1; then
  step "stand-in images" bash tests/images/build.sh
else
  echo "test.sh: not root and no Docker engine: tool installation skipped" >&2
fi

step "fmt" cargo fmt --all -- --check
step "clippy" cargo clippy --all-targets --locked -- -D warnings
step "tests" cargo test --locked
