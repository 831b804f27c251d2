#!/usr/bin/env bash
# The benchmark, one command. Prints a Markdown report on stdout (progress on stderr):
#
#   scripts/bench.sh > /tmp/bench.md                  # about 5 minutes on 2 cores
#   BENCH_QUICK=1 scripts/bench.sh > /tmp/bench.md    # fewer runs, criterion --quick
#   BENCH_OUT_DIR=target/bench scripts/bench.sh        # write to that disk, not to a tmpfs
#
# In one run, on the same machine:
#   1. whole commands: `render` and `render --check` of 1, 10, 100 and 1,000 tenants with every
#      service (time with hyperfine, peak memory with GNU time);
#   2. `docker compose config -q` on one rendered stack (23 services);
#   3. `tutor config save` on tutor's own default project, a template-based compose generator
#      operators use today (installed from PyPI by name into target/bench-venv on first use);
#   4. the library benchmark (criterion, benches/render.rs): parse, render and check in memory,
#      summarised here; the full results are under target/criterion/.
#
# Needs: cargo, python3, hyperfine, GNU time (/usr/bin/time); docker compose v2 and pip (PyPI)
# for the comparisons, which are skipped with a note when missing. Run it when the machine is
# otherwise idle: the report prints the load average before and after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=${BENCH_QUICK:-}
runs_small=10 runs_big=5
[[ -n $quick ]] && runs_small=3 runs_big=2
log() { printf '==> %s\n' "$*" >&2; }

log "building (release)"
cargo build --release --quiet
bin=$PWD/target/release/stackgen
work=$(mktemp -d)
cleanup() { rm -rf "$work"; [[ -n ${out_root:-} && $out_root != "$work" ]] && rm -rf "$out_root"; }
trap cleanup EXIT
# Output goes to a tmpfs when one is available, so the numbers measure stackgen, not the disk;
# BENCH_OUT_DIR=DIR measures on DIR's file system instead (see BENCHMARKS.md for ext4).
out_root=$work
if [[ -n ${BENCH_OUT_DIR:-} ]]; then
  mkdir -p "$BENCH_OUT_DIR"
  out_root=$(mktemp -d "$BENCH_OUT_DIR/stackgen-bench.XXXXXX")
elif [[ -d /dev/shm && -w /dev/shm ]]; then
  out_root=$(mktemp -d /dev/shm/stackgen-bench.XXXXXX)
fi

ms() { # hyperfine JSON -> "mean ms ± stddev"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['mean']*1000:.1f} ms ± {r['stddev']*1000:.1f}\")" "$1"
}
mean_ms() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['mean']*1000)" "$1"
}
peak_kib() { # CMD... -> peak RSS in KiB (GNU time's maximum resident set size)
  /usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>&1 || true
  tail -1 "$work/rss"
}

echo "## stackgen benchmark"
echo
echo "- command: \`scripts/bench.sh\`${quick:+ (BENCH_QUICK=1)}"
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo n/a)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
echo "- machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(uname -sr)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- output directory: ${out_root%/*} ($(df -T "$out_root" | awk 'NR==2 {print $2}'))"
echo
echo "### Whole commands"
echo
echo "| tenants | services | manifest | render (mean ± σ) | per tenant | render --check (mean ± σ) | peak RSS render | peak RSS --check |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in 1 10 100 1000; do
  log "whole commands: $n tenant(s)"
  manifest=$work/m$n.env
  python3 scripts/bench-manifest.py "$n" "$manifest"
  out=$out_root/s$n
  runs=$runs_small
  [[ $n -ge 1000 ]] && runs=$runs_big
  hyperfine --style none --warmup 1 --runs "$runs" --export-json "$work/r$n.json" \
    --prepare "rm -rf $out" "$bin --env-file $manifest --stacks-dir $out render" >/dev/null
  "$bin" --env-file "$manifest" --stacks-dir "$out" render >/dev/null
  hyperfine --style none --warmup 1 --runs "$runs" --export-json "$work/c$n.json" \
    "$bin --env-file $manifest --stacks-dir $out render --check" >/dev/null
  rss_check=$(peak_kib "$bin" --env-file "$manifest" --stacks-dir "$out" render --check)
  services=$(grep -c '^    image:' "$out"/t0-stack.yml)
  rm -rf "$out"
  rss=$(peak_kib "$bin" --env-file "$manifest" --stacks-dir "$out" render)
  per=$(python3 -c "print(f'{$(mean_ms "$work/r$n.json")/$n:.2f} ms')")
  size=$(du -k "$manifest" | cut -f1)
  echo "| $n | $((services * n)) | $size KiB | $(ms "$work/r$n.json") | $per | $(ms "$work/c$n.json") | $((rss / 1024)) MiB | $((rss_check / 1024)) MiB |"
done
rm -rf "$out_root/s1000"
echo

echo "### Next to them, in the same run"
echo
if docker compose version >/dev/null 2>&1; then
  log "docker compose config -q"
  manifest=$work/m1.env
  out=$out_root/s1
  "$bin" --env-file "$manifest" --stacks-dir "$out" render >/dev/null
  sed -i 's/^T0__TAILSCALE_AUTH_KEY=.*/T0__TAILSCALE_AUTH_KEY=tskey-bench/' "$manifest"
  hyperfine --style none --warmup 1 --runs "$runs_small" --export-json "$work/dc.json" \
    "docker compose --env-file $manifest -f $out/t0-stack.yml config -q" >/dev/null
  rss=$(peak_kib docker compose --env-file "$manifest" -f "$out/t0-stack.yml" config -q)
  echo "- \`docker compose config -q\` on one rendered stack (23 services): $(ms "$work/dc.json"), peak RSS $((rss / 1024)) MiB (compose $(docker compose version --short))"
else
  echo "- docker compose v2 is not installed: comparison skipped"
fi

venv=target/bench-venv
if [[ ! -x $venv/bin/tutor ]]; then
  log "installing tutor from PyPI into $venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet tutor; } >"$work/pip.log" 2>&1; then
    echo "- tutor could not be installed from PyPI here ($(tail -1 "$work/pip.log")): comparison skipped"
  fi
fi
if [[ -x $venv/bin/tutor ]]; then
  log "tutor config save"
  root=$work/tutor
  # A fresh default project each run: tutor writes config.yml and renders its templates to env/.
  # Python may cache its bytecode (as on an operator's machine), whatever this shell says.
  hyperfine --style none --warmup 2 --runs "$runs_small" --export-json "$work/tutor.json" \
    --prepare "rm -rf $root" "env -u PYTHONDONTWRITEBYTECODE TUTOR_ROOT=$root $venv/bin/tutor config save" >/dev/null
  rm -rf "$root"
  rss=$(peak_kib env -u PYTHONDONTWRITEBYTECODE TUTOR_ROOT="$root" "$venv/bin/tutor" config save)
  files=$(find "$root/env" -type f | wc -l)
  echo "- \`tutor config save\` on tutor's default project (fresh TUTOR_ROOT; $files files rendered, 3 compose files): $(ms "$work/tutor.json"), peak RSS $((rss / 1024)) MiB (tutor $("$venv/bin/tutor" --version | awk '{print $NF}'), $(python3 --version))"
fi
echo

echo "### Library (criterion, in memory, no process start-up or writes)"
echo
log "criterion: cargo bench --bench render ${quick:+-- --quick}"
cargo bench --quiet --bench render -- ${quick:+--quick} >"$work/criterion.txt" 2>&1 || {
  echo "criterion failed:"
  echo '```'
  tail -20 "$work/criterion.txt"
  echo '```'
}
python3 - <<'EOF'
import json, os
root = "target/criterion"
print("| tenants | parse | render (parse + all tenants in memory) | check (render + compare with disk) |")
print("|---:|---:|---:|---:|")
def est(group, n):
    p = os.path.join(root, group, str(n), "new", "estimates.json")
    if not os.path.exists(p):
        return "n/a"
    e = json.load(open(p))
    m = e["mean"]["point_estimate"] / 1e6
    lo = e["mean"]["confidence_interval"]["lower_bound"] / 1e6
    hi = e["mean"]["confidence_interval"]["upper_bound"] / 1e6
    return f"{m:.2f} ms [{lo:.2f}, {hi:.2f}]"
for n in (1, 10, 100, 1000):
    print(f"| {n} | {est('parse', n)} | {est('render', n)} | {est('check', n)} |")
print()
print(f"Mean with its 95% confidence interval. Full results: `{os.path.abspath(root)}/<group>/<tenants>/new/estimates.json` (and `report/` when criterion's HTML reports are enabled).")
EOF
echo
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
