#!/usr/bin/env bash
# Several tenants at once: `up --all` of 10 small tenants against `up` of 1, on a real engine.
# Prints a Markdown report on stdout (progress on stderr):
#
#   scripts/bench-tenants.sh > /tmp/bench-tenants.md          # 3 runs each, a few minutes
#   BENCH_RUNS=5 BENCH_JOBS=10 scripts/bench-tenants.sh       # more runs, all 10 at once
#   STACKGEN=target/debug/stackgen scripts/bench-tenants.sh   # that binary, no build
#
# Each tenant runs postgres (pgvector as its vector DB), redis and caddy on the local test images
# (stackgen-real/*:test, built by tests/images/real/build.sh), internal TLS, its own 40-port range
# from BENCH_PORT_BASE (default 41000) up. hyperfine times `up` (to healthy) with `down` as its
# cleanup, so every run starts from no containers.
#
# Needs: cargo, docker with compose v2, hyperfine, and root (`up` creates the data directories
# owned by the services' UIDs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=${BENCH_RUNS:-3}
jobs=${BENCH_JOBS:-4}
tenants=${BENCH_TENANTS:-10}
port_base=${BENCH_PORT_BASE:-41000}
log() { printf '==> %s\n' "$*" >&2; }

# STACKGEN=path uses that binary and skips the build (the time is Docker's, not stackgen's).
if [[ -z ${STACKGEN:-} ]]; then
  log "building (release)"
  cargo build --release --quiet
fi
bin=${STACKGEN:-${CARGO_TARGET_DIR:-$PWD/target}/release/stackgen}

for image in stackgen-real/postgres:test stackgen-real/redis:test stackgen-real/caddy:test; do
  docker image inspect "$image" >/dev/null 2>&1 || {
    echo "missing $image: run tests/images/real/build.sh first" >&2
    exit 1
  }
done

work=$(mktemp -d /tmp/bench-tenants.XXXXXX)
names=()
for i in $(seq 1 "$tenants"); do names+=("$(printf 'bench-t%02d' "$i")"); done
cleanup() {
  (cd "$work" && "$bin" down --all --jobs "$jobs" >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

log "a manifest of $tenants tenants in $work"
args=()
for n in "${names[@]}"; do args+=(--tenant "$n"); done
(
  cd "$work"
  "$bin" init --non-interactive "${args[@]}" --services postgres,redis,caddy \
    --vector-db pgvector --domain bench.test --base-dir "$work/base" >/dev/null
  i=0
  for n in "${names[@]}"; do
    prefix=$(echo "$n" | tr 'a-z-' 'A-Z_')
    start=$((port_base + i * 100))
    sed -i "/^${prefix}__PORT_RANGE=/d" .env
    echo "${prefix}__PORT_RANGE=${start}-$((start + 39))" >> .env
    i=$((i + 1))
  done
  sed -i '/^TLS_MODE=/d' .env
  cat >> .env <<IMAGES
TLS_MODE=internal
POSTGRES_IMAGE=stackgen-real/postgres:test
PGVECTOR_IMAGE=stackgen-real/postgres:test
REDIS_IMAGE=stackgen-real/redis:test
CADDY_IMAGE=stackgen-real/caddy:test
IMAGES
  "$bin" render >/dev/null
)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "timing: up of 1 tenant, up --all of $tenants (--jobs $jobs), $runs runs each"
cd "$work"
# Each command's output goes to $work/last.log: shown when a run fails.
hyperfine --runs "$runs" --export-json "$work/result.json" --style basic \
  --prepare "'$bin' down --all --jobs $jobs >/dev/null 2>&1 || true" \
  -n "up 1 tenant" "'$bin' up ${names[0]} --timeout 300 >'$work/last.log' 2>&1" \
  -n "up --all ($tenants tenants, --jobs $jobs)" "'$bin' up --all --jobs $jobs --timeout 300 >'$work/last.log' 2>&1" \
  -n "up --all ($tenants tenants, --jobs 1)" "'$bin' up --all --jobs 1 --timeout 300 >'$work/last.log' 2>&1" >&2 || {
  echo "a run failed; its output:" >&2
  tail -n 40 "$work/last.log" >&2
  exit 1
}
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "## up --all: $tenants tenants vs 1 ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Machine: $(nproc) cores, $cpu; docker $(docker version --format '{{.Server.Version}}'); load average $load_before before, $load_after after."
echo "Each tenant: postgres (pgvector), redis, caddy on the stackgen-real test images; $runs runs each."
echo
echo "| command | mean | σ | min | max |"
echo "|---|---:|---:|---:|---:|"
python3 - "$work/result.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| `{r['command']}` | {r['mean']:.1f} s | {r['stddev'] or 0:.1f} s | {r['min']:.1f} s | {r['max']:.1f} s |")
PY
