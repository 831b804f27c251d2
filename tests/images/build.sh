#!/usr/bin/env bash
# Builds the honest stand-in images stackgen-standin/<service>:test, one per catalog service whose
# real program cannot be had here, each from that image's contract (`stackgen catalog --json`,
# i.e. templates/catalog.yml), without any image registry (`docker import` of a tar):
#
#   - the real image's default user (USER uid:gid, with its /etc/passwd entry and HOME), and the
#     paths it owns chowned to that user, so a foreign UID meets the same EACCES;
#   - only the programs the real image has (a healthcheck that calls a missing one fails):
#     busybox applets as links, `sh` as dash, the rest (curl, node, python3, mc, ...) as
#     standin/shim, which succeeds only when the stand-in's server really answers;
#   - an entrypoint (standin/run) that writes every path the contract lists, as the UID it runs
#     as, and exits 1 when a fatal one cannot be written, as the real program does; and refuses to
#     start without the arguments the real program requires.
#
# The services with real programs (postgres, redis, squid, prometheus, caddy, chroma) are built
# by tests/images/real/build.sh instead.
#
# Idempotent: an image is rebuilt only when the hash of its inputs (this script, standin/*, its
# contract, busybox and dash) differs from its label org.stackgen.standin.hash. FORCE=1 rebuilds.
#
# Usage: STACKGEN=target/debug/stackgen tests/images/build.sh [SERVICE...]   (default: all)
set -euo pipefail

umask 022
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$HERE/../.." && pwd)
PREFIX=stackgen-standin
TAG=test
LABEL=org.stackgen.standin.hash
STACKGEN=${STACKGEN:-$ROOT_DIR/target/debug/stackgen}

# Services whose real program runs in the tests (tests/images/real/).
REAL=(postgres redis dify-ssrf-proxy prometheus caddy chroma)

# service  ports (HTTP listeners inside the container; "-" for none)
PORTS=(
  "qdrant 6333 6334"
  "weaviate 8080 50051 2112"
  "ollama 11434"
  "n8n 5678"
  "flowise 3000"
  "anythingllm 3001"
  "litellm 4000"
  "dify-api 5001"
  "dify-web 3000"
  "dify-sandbox 8194"
  "dify-plugin-daemon 5002"
  "openclaw 18789"
  "tailscale 9002"
  "openwebui 8080"
  "grafana 3000"
  "minio 9000 9001"
  "signal-cli-rest-api 8080"
)

# Paths the stand-in's httpd answers with 200 (the health endpoints of the real services).
HEALTH_PATHS=(
  /healthz /readyz /health /-/ready /-/healthy /v1/.well-known/ready /api/v2/heartbeat
  /api/health /api/ping /api/v1/ping /v1/health /health/liveliness /health/readiness
  /healthz/readiness /minio/health/live /minio/health/ready /config/ /api/v1/health /health/check
)

PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker not found"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
[[ -x $STACKGEN ]] || die "$STACKGEN not found: build stackgen first (cargo build)"
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || BUSYBOX=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is dynamically linked; install busybox-static"
DASH=/bin/dash
[[ -x $DASH ]] || die "dash not found"
APPLETS=" $("$BUSYBOX" --list | tr '\n' ' ') "

CATALOG=$("$STACKGEN" catalog --json)

common_hash=$( {
  cat "${BASH_SOURCE[0]}"
  for f in "$HERE"/standin/*; do printf '%s\n' "${f##*/}"; cat "$f"; done
  sha256sum <"$BUSYBOX"
  sha256sum "$DASH"
} | sha256sum | cut -d' ' -f1)

# A service's contract; for an image that several services run (dify-api, -worker, -beat share
# DIFY_API_IMAGE), the writes of every one of them, since the stand-in plays each role.
contract_of() {
  jq -c --arg s "$1" '
    (.[] | select(.service == $s)) as $me
    | [.[] | select(.image_key == $me.image_key) | .contract.writes[]] as $writes
    | $me.contract | .writes = ($writes | unique)' <<<"$CATALOG"
}
ports_of() {
  local p
  for p in "${PORTS[@]}"; do [[ ${p%% *} == "$1" ]] && { printf '%s' "${p#* }"; return; }; done
  die "no ports listed for $1 in ${BASH_SOURCE[0]}"
}
image_hash() { printf '%s\n%s\n%s\n' "$common_hash" "$1" "$(contract_of "$1")" | sha256sum | cut -d' ' -f1; }

want=("$@")
selected=()
# One image per image key: services that run another service's image (image_from) get none.
for s in $(jq -r '.[] | select(.image_key == (.service | ascii_upcase | gsub("-"; "_")) + "_IMAGE") | .service' <<<"$CATALOG"); do
  [[ " ${REAL[*]} " == *" $s "* ]] && continue
  if [[ ${#want[@]} -gt 0 && " ${want[*]} " != *" $s "* ]]; then continue; fi
  selected+=("$s")
done
[[ ${#selected[@]} -gt 0 ]] || die "no stand-in for: ${want[*]}"

todo=()
for s in "${selected[@]}"; do
  have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$PREFIX/$s:$TAG" 2>/dev/null || true)
  if [[ ${FORCE:-0} == 1 || $have != "$(image_hash "$s")" ]]; then todo+=("$s"); fi
done
if [[ ${#todo[@]} -eq 0 ]]; then
  log "all ${#selected[@]} stand-in images up to date"
  exit 0
fi

WORK=$(mktemp -d /tmp/stackgen-standin.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

copy_with_libs() { # BINARY ROOT DEST
  local lib
  install -D -m 0755 "$1" "$2$3"
  while read -r lib; do
    [[ -e $2$lib ]] && continue
    mkdir -p "$2$(dirname "$lib")"
    cp -L "$lib" "$2$lib"
  done < <(ldd "$1" | grep -oE '/[^ ]+' | sort -u)
}

# Installs one program the contract lists: a busybox applet as a link, sh as dash, wget/nc/jq
# as their wrappers, anything else as the health shim.
install_binary() { # ROOT NAME
  local root=$1 b=$2
  case "$b" in
    sh) copy_with_libs "$DASH" "$root" /bin/dash; ln -sfn dash "$root/bin/sh" ;;
    wget | nc | jq) ln -sfn "/standin/$b" "$root/usr/bin/$b" ;;
    bash) ln -sfn /standin/shim "$root/bin/bash" ;;
    *)
      if [[ $APPLETS == *" $b "* ]]; then
        ln -sfn /standin/busybox "$root/usr/bin/$b"
      else
        ln -sfn /standin/shim "$root/usr/local/bin/$b"
      fi
      ;;
  esac
}

build_one() { # SERVICE
  local s=$1 c root uid gid home ports ep path h
  c=$(contract_of "$s")
  root=$WORK/$s
  install -d -m 0755 "$root" # the tar's "." becomes the container's "/"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,var,run,standin/www}
  install -d -m 1777 "$root/tmp" "$root/var/tmp"
  install -d -m 0700 "$root/root"
  install -m 0755 "$BUSYBOX" "$root/standin/busybox"
  install -m 0755 "$HERE"/standin/{run,shim,jq,wget,nc} "$root/standin/"

  IFS=: read -r uid gid <<<"$(jq -r .image_user <<<"$c")"
  home=$(jq -r .home <<<"$c")
  {
    echo "root:x:0:0:root:/root:/bin/sh"
    [[ $uid != 0 ]] && echo "app:x:$uid:$gid:app:$home:/bin/sh"
    echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"
  } >"$root/etc/passwd"
  {
    echo "root:x:0:"
    [[ $gid != 0 ]] && echo "app:x:$gid:"
    echo "nogroup:x:65534:"
  } >"$root/etc/group"
  : >"$root/etc/hosts"; : >"$root/etc/resolv.conf"; : >"$root/etc/hostname"
  # The paths the image user owns (its home only when the contract lists it: some images name a
  # home they never create); everything else belongs to root.
  while read -r path; do
    [[ -n $path ]] || continue
    install -d -m 0755 "$root$path"
    chown -R "$uid:$gid" "$root$path"
  done < <(jq -r '.owns[]' <<<"$c")
  # The real image's tree under an owned path (chown -R in its Dockerfile): the parents of the
  # literal write paths there exist and belong to the image user, so a mount below them does not
  # make Docker create them as root.
  local w o
  while read -r w; do
    [[ $w == /* && $w != *'$'* ]] || continue
    while read -r o; do
      if [[ $w == "$o"/* ]]; then
        install -d -m 0755 "$root$(dirname "$w")"
        chown -R "$uid:$gid" "$root$o"
      fi
    done < <(jq -r '.owns[]' <<<"$c")
  done < <(jq -r '.writes[].path' <<<"$c")
  while read -r b; do install_binary "$root" "$b"; done < <(jq -r '.binaries[]' <<<"$c")

  # The contract the entrypoint enforces.
  jq -r '(.writes[] | "write \(if .fatal then 1 else 0 end) \(if .file then 1 else 0 end) \(.path)"),
         (if (.requires_args | length) > 0 then "requires_args \(.requires_args | join(" "))" else empty end)' \
    <<<"$c" >"$root/standin/contract"

  local www=$root/standin/www p q
  echo "stackgen stand-in $s" >"$www/index.html"
  # A valid Prometheus exposition, so a scrape of the stand-in proves network, name and port.
  printf '# TYPE standin_up gauge\nstandin_up{service="%s"} 1\n' "$s" >"$www/metrics"
  for p in "${HEALTH_PATHS[@]}"; do
    p=${p%/}
    for q in "${HEALTH_PATHS[@]}"; do [[ $q == "$p"/?* ]] && mkdir -p "$www$p"; done
  done
  for p in "${HEALTH_PATHS[@]}"; do
    if [[ $p == */ || -d $www${p%/} ]]; then
      mkdir -p "$www${p%/}"; echo OK >"$www${p%/}/index.html"
    else
      mkdir -p "$(dirname "$www$p")"; echo OK >"$www$p"
    fi
  done

  tar --numeric-owner --sort=name --mtime=@0 -C "$root" -cf "$root.tar" .
  ports=$(ports_of "$s")
  [[ $ports == - ]] && ports=""
  ep='["/standin/run"'
  for p in $ports; do ep+=", \"$p\""; done
  ep+=']'
  h=$(image_hash "$s")
  local changes=(
    --change "ENTRYPOINT $ep"
    --change "USER $uid:$gid"
    --change "ENV PATH=$PATH_ENV"
    --change "ENV STANDIN_NAME=$s"
    --change "LABEL $LABEL=$h"
  )
  while read -r kv; do
    [[ -n $kv ]] && changes+=(--change "ENV $kv")
  done < <(jq -r '.env | to_entries[] | "\(.key)=\(.value)"' <<<"$c")
  docker import "${changes[@]}" "$root.tar" "$PREFIX/$s:$TAG" >/dev/null
  log "built $PREFIX/$s:$TAG (user $uid:$gid; programs: $(jq -r '.binaries | join(" ")' <<<"$c"); ports: ${ports:-none})"
}

for s in "${todo[@]}"; do build_one "$s"; done
# Rebuilt images leave their predecessors untagged: drop those.
docker image prune -f --filter "label=$LABEL" >/dev/null || true
log "built ${#todo[@]} of ${#selected[@]} stand-in images"
