#!/usr/bin/env bash
# The project's test command (README "Two commands"; CI runs it through .ci/run).
#
# As root it first makes the machine ready, idempotently: installs the Docker engine, Compose v2,
# caddy, the apparmor tools, tmux and mmdebstrap (.ci/install-deps.sh), starts dockerd
# (.ci/start-dockerd.sh), and builds the local images the end-to-end tests run (no image registry
# is reachable): real PostgreSQL + pgvector, Redis, squid, prometheus and caddy from Debian's
# packages, chroma's server and litellm's config loader from PyPI (tests/images/real/build.sh),
# and a stand-in per other
# service built from its image
# contract (tests/images/build.sh, which reads `stackgen catalog --json`), and starts a second
# engine, the Docker context sg-host2 (.ci/start-second-engine.sh). Then: formatting,
# lints, and the whole test suite.
#
# Any user: kubernetes-validate into target/kube-venv (for the Kubernetes target's schema check).
#
# Not root: nothing else is installed; tests whose tool is missing print "SKIPPED ..." (in CI, where
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
fi
# The stand-in builder reads the catalog from the binary.
step "build" cargo build --locked
if [[ $(id -u) -eq 0 ]]; then
  step "real-program images" env WITH_CHROMA=1 WITH_LITELLM=1 bash tests/images/real/build.sh
  step "stand-in images" env STACKGEN=target/debug/stackgen bash tests/images/build.sh
  # A second engine (Docker context sg-host2) for the multi-engine tests (engines.rs,
  # engines_backup.rs; engines_edge.rs copies in the caddy and whoami images it builds itself),
  # with only the images they run there; stopped, and its bridge deleted,
  # when this script ends.
  trap 'bash .ci/stop-second-engine.sh' EXIT
  step "second engine" bash .ci/start-second-engine.sh stackgen-real/redis:test stackgen-real/postgres:test \
    stackgen-standin/minio:test stackgen-standin/qdrant:test
elif docker info >/dev/null 2>&1; then
  step "stand-in images" env STACKGEN=target/debug/stackgen bash tests/images/build.sh
  echo "test.sh: not root: tests/images/real/build.sh (mmdebstrap) skipped; end-to-end tests that need its images skip" >&2
else
  echo "test.sh: not root and no Docker engine: tool installation skipped" >&2
fi

# kubernetes-validate (PyPI, by name, pinned) for the strict schema check of the Kubernetes
# target: into target/kube-venv, once; it carries the API schemas, so the tests run offline
# afterwards. Without it the test skips here and fails in CI (STACKGEN_REQUIRE_TOOLS=1).
KUBE_VALIDATE_VERSION=1.37.0
kube_validate() {
  local venv=target/kube-venv
  if [[ $("$venv/bin/kubernetes-validate" --version 2>/dev/null) == "$KUBE_VALIDATE_VERSION" ]]; then
    return 0
  fi
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBE_VALIDATE_VERSION"; }; then
    echo "test.sh: kubernetes-validate could not be installed; the Kubernetes schema test skips (fails in CI)" >&2
  fi
}
if command -v python3 >/dev/null 2>&1; then
  step "kubernetes-validate" kube_validate
fi

step "fmt" cargo fmt --all -- --check
step "clippy" cargo clippy --all-targets --locked -- -D warnings
step "tests" cargo test --locked
