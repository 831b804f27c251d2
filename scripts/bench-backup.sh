#!/usr/bin/env bash
# Backup and restore of a tenant holding about 1 GiB, one command (as root, with the test images
# built by scripts/test.sh). Prints a Markdown table on stdout, progress on stderr:
#
#   scripts/bench-backup.sh                 # ~1 GiB: 256 MiB in postgres, 768 MiB of files
#   BENCH_PG_MIB=64 BENCH_FILES_MIB=192 scripts/bench-backup.sh   # a smaller run
#
# The tenant (postgres and redis from tests/images/real, qdrant and n8n as stand-ins) runs while
# it is backed up: postgres is dumped, redis snapshotted, qdrant and n8n stopped for their copy.
# The files are random bytes (gzip cannot shrink them: the worst case for time and size). Then
# `down`, `teardown --purge-data`, and `restore` (which loads the dump into a fresh postgres)
# are timed, and the row count is checked after `up`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pg_mib=${BENCH_PG_MIB:-256}
files_mib=${BENCH_FILES_MIB:-768}
log() { printf '==> %s\n' "$*" >&2; }

cargo build --release --quiet
bin=$PWD/target/release/stackgen
work=$(mktemp -d /var/tmp/stackgen-bench-backup.XXXXXX)
tenant=bench-bk
cleanup() {
  (cd "$work" && "$bin" teardown "$tenant" --purge-data --yes >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
"$bin" init --non-interactive --tenant "$tenant" --services postgres,redis,qdrant,n8n,caddy \
  --domain bench.test --base-dir "$work/base" >/dev/null
port=$(( 41000 + RANDOM % 2000 ))
sed -i "s/^BENCH_BK__PORT_RANGE=.*/BENCH_BK__PORT_RANGE=$port-$((port + 39))/; s/^TLS_MODE=.*/TLS_MODE=internal/" .env
for s in postgres redis caddy; do echo "${s^^}_IMAGE=stackgen-real/$s:test" >> .env; done
for s in qdrant n8n; do echo "${s^^}_IMAGE=stackgen-standin/$s:test" >> .env; done
"$bin" render >/dev/null
log "up"
"$bin" up "$tenant" --timeout 180 >/dev/null

log "filling postgres with ${pg_mib} MiB and qdrant's folder with ${files_mib} MiB"
pg=$(docker ps -q --filter "label=com.stackgen.tenant=$tenant" --filter label=com.stackgen.service=postgres)
rows=$(( pg_mib * 1024 * 1024 / 1100 ))
docker exec "$pg" psql -q -h /var/run/postgresql -U stackgen -d n8n -c \
  "CREATE TABLE bench(id bigint PRIMARY KEY, v text); INSERT INTO bench SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, $rows) g;"
data=$work/base/tenants/$tenant/data
owner=$(stat -c %u:%g "$data/qdrant")
mkdir -p "$data/qdrant/bench"
for i in $(seq 1 $(( files_mib / 64 ))); do
  head -c $(( 64 * 1024 * 1024 )) /dev/urandom > "$data/qdrant/bench/segment-$i.bin"
done
chown -R "$owner" "$data/qdrant/bench"
sync
size=$(du -sb "$data" | cut -f1)
pg_size=$(docker exec "$pg" psql -tA -h /var/run/postgresql -U stackgen -d n8n -c "SELECT pg_database_size('n8n')")

t0=$(date +%s.%N)
"$bin" backup "$tenant" --to "$work/backups" > "$work/backup.log"
t1=$(date +%s.%N)
archive=$(ls "$work"/backups/*.tar.gz)
downtime=$(grep -o '[a-z0-9-]* down for [0-9.]* s' "$work/backup.log" | sed 's/ down for /: /' | paste -sd, -)
"$bin" down "$tenant" >/dev/null
"$bin" teardown "$tenant" --purge-data --yes >/dev/null
t2=$(date +%s.%N)
"$bin" restore "$tenant" --from "$archive" > "$work/restore.log"
t3=$(date +%s.%N)
"$bin" up "$tenant" --timeout 180 >/dev/null
pg=$(docker ps -q --filter "label=com.stackgen.tenant=$tenant" --filter label=com.stackgen.service=postgres)
back=$(docker exec "$pg" psql -tA -h /var/run/postgresql -U stackgen -d n8n -c "SELECT count(*) FROM bench")
[[ $back == "$rows" ]] || { echo "restore lost rows: $back of $rows" >&2; exit 1; }

mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s", b - a }'; }
echo "| Data (folder + database) | Archive | backup (running tenant) | restore (stopped, empty) | services down during backup |"
echo "|---|---|---|---|---|"
echo "| $(mib "$size") on disk, database $(mib "$pg_size") | $(mib "$(stat -c %s "$archive")") | $(secs "$t0" "$t1") | $(secs "$t2" "$t3") | ${downtime:-none} |"
echo
echo "$rows rows back after up; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)."
