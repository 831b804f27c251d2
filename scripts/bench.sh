#!/usr/bin/env bash
# Benchmark of whole commands: render and render --check of 1, 10, 100 and 1,000 tenants with
# every service (time with hyperfine, peak memory with GNU time), next to `docker compose config -q`
# on one rendered stack, measured in the same run. Prints a Markdown report on stdout.
#
#   scripts/bench.sh > /tmp/bench.md
#
# Needs: cargo, python3, hyperfine, GNU time (/usr/bin/time); docker compose v2 for the comparison.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet
bin=$PWD/target/release/stackgen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Output goes to a tmpfs when one is available, so the numbers measure stackgen, not the disk.
out_root=$work
if [[ -d /dev/shm && -w /dev/shm ]]; then
  out_root=$(mktemp -d /dev/shm/stackgen-bench.XXXXXX)
  trap 'rm -rf "$work" "$out_root"' EXIT
fi

echo "## stackgen benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
echo "- machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "- output directory: ${out_root%/*} (tmpfs when /dev/shm exists)"
echo
echo "| tenants | services | render (mean ± σ) | render --check (mean ± σ) | peak RSS render |"
echo "|---:|---:|---:|---:|---:|"
for n in 1 10 100 1000; do
  manifest=$work/m$n.env
  python3 scripts/bench-manifest.py "$n" "$manifest"
  out=$out_root/s$n
  hyperfine --style none --warmup 1 --runs 5 --export-json "$work/r$n.json" \
    --prepare "rm -rf $out" "$bin --env-file $manifest --stacks-dir $out render" >/dev/null
  "$bin" --env-file "$manifest" --stacks-dir "$out" render >/dev/null
  hyperfine --style none --warmup 1 --runs 10 --export-json "$work/c$n.json" \
    "$bin --env-file $manifest --stacks-dir $out render --check" >/dev/null
  rm -rf "$out"
  rss=$( { /usr/bin/time -f '%M' "$bin" --env-file "$manifest" --stacks-dir "$out" render >/dev/null; } 2>&1 | tail -1)
  services=$(grep -c '^    image:' "$out"/t0-stack.yml)
  fmt() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['mean']*1000:.1f} ms ± {r['stddev']*1000:.1f}\")" "$1"; }
  echo "| $n | $((services * n)) | $(fmt "$work/r$n.json") | $(fmt "$work/c$n.json") | $((rss / 1024)) MiB |"
done
echo
if docker compose version >/dev/null 2>&1; then
  manifest=$work/m1.env
  out=$out_root/s1
  "$bin" --env-file "$manifest" --stacks-dir "$out" render >/dev/null
  sed -i 's/^T0__TAILSCALE_AUTH_KEY=.*/T0__TAILSCALE_AUTH_KEY=tskey-bench/' "$manifest"
  hyperfine --style none --warmup 1 --runs 10 --export-json "$work/dc.json" \
    "docker compose --env-file $manifest -f $out/t0-stack.yml config -q" >/dev/null
  echo "docker compose config -q on one rendered stack (23 services): $(python3 -c "import json; r=json.load(open('$work/dc.json'))['results'][0]; print(f\"{r['mean']*1000:.1f} ms ± {r['stddev']*1000:.1f}\")") ($(docker compose version --short))"
else
  echo "docker compose v2 not installed: comparison skipped"
fi
