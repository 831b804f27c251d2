#!/usr/bin/env bash
# Builds the local stand-in images stackgen-standin/<service>:test without any image registry:
# a busybox-static root filesystem packed with tar and loaded with `docker import`.
#
# Every image runs `/standin/run PORT...` (busybox httpd on each port, serving the health paths
# below) and carries shims for the healthcheck binaries of the real images (see standin/shim),
# so a generated stack's healthchecks run unchanged. The caddy image runs the real caddy binary
# from Debian's caddy package instead.
#
# Idempotent and fast: an image is rebuilt only when it is missing or the hash of its build
# inputs (this script, standin/*, the busybox and caddy binaries, its ports) differs from the
# one stored in its label org.stackgen.standin.hash. FORCE=1 rebuilds everything.
#
# Usage: tests/images/build.sh [SERVICE...]   (default: all)
set -euo pipefail

umask 022
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=stackgen-standin
TAG="test"
LABEL=org.stackgen.standin.hash

# service  ports (HTTP listeners inside the container; "-" for none)
SERVICES=(
  "postgres 5432"
  "redis 6379"
  "qdrant 6333 6334"
  "weaviate 8080 50051"
  "chroma 8000"
  "ollama 11434"
  "n8n 5678"
  "flowise 3000"
  "anythingllm 3001"
  "litellm 4000"
  "dify-api 5001"
  "dify-worker -"
  "dify-worker-beat -"
  "dify-web 3000"
  "dify-sandbox 8194"
  "dify-ssrf-proxy 3128"
  "dify-plugin-daemon 5002"
  "openclaw 18789"
  "tailscale 9002"
  "openwebui 8080"
  "grafana 3000"
  "prometheus 9090"
  "minio 9000 9001"
  "signal-cli-rest-api 8080"
  "caddy 80 443 2019"
)

# Paths that `busybox wget -q --spider http://127.0.0.1:PORT<path>` must find. A path that is
# also the parent of another one becomes a directory with an index.html (httpd redirects
# /health -> /health/, which wget and curl -f accept).
HEALTH_PATHS=(
  /healthz /readyz /health /-/ready /-/healthy /v1/.well-known/ready /api/v2/heartbeat
  /api/health /api/ping /api/v1/ping /v1/health /health/liveliness /health/readiness
  /healthz/readiness /minio/health/live /config/
)

# Healthcheck binaries of the real images, all served by standin/shim.
SHIMS=(pg_isready redis-cli curl node python3 bash ollama mc celery squidclient tailscale)

PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker not found"
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || BUSYBOX=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; install busybox-static"
fi
CADDY=$(command -v caddy || true)
DASH=/bin/dash

# ---- which images need building -------------------------------------------------------------
common_hash=$( {
  cat "${BASH_SOURCE[0]}"
  for f in "$HERE"/standin/*; do printf '%s\n' "${f##*/}"; cat "$f"; done
  sha256sum <"$BUSYBOX"
  if [[ -x $DASH ]]; then sha256sum "$DASH" "$(ldd "$DASH" | grep -oE '/[^ ]*libc\.so[^ ]*' | head -1)"; fi
} | sha256sum | cut -d' ' -f1)
caddy_hash=""
[[ -n $CADDY ]] && caddy_hash=$(sha256sum <"$CADDY" | cut -d' ' -f1)

image_hash() { # "service ports..."
  local extra=""
  [[ ${1%% *} == caddy ]] && extra=$caddy_hash
  printf '%s\n%s\n%s\n' "$common_hash" "$1" "$extra" | sha256sum | cut -d' ' -f1
}

want=("$@")
selected=()
for s in "${SERVICES[@]}"; do
  name=${s%% *}
  if [[ ${#want[@]} -gt 0 && " ${want[*]} " != *" $name "* ]]; then continue; fi
  selected+=("$s")
done
[[ ${#selected[@]} -gt 0 ]] || die "no such service: ${want[*]}"

names=()
for s in "${selected[@]}"; do names+=("$PREFIX/${s%% *}:$TAG"); done
declare -A have=()
while read -r ref h; do
  [[ -n $ref ]] && have[$ref]=$h
done < <(docker image inspect -f "{{index .RepoTags 0}} {{index .Config.Labels \"$LABEL\"}}" "${names[@]}" 2>/dev/null || true)

todo=()
for s in "${selected[@]}"; do
  ref=$PREFIX/${s%% *}:$TAG
  if [[ ${FORCE:-0} == 1 || ${have[$ref]:-} != "$(image_hash "$s")" ]]; then
    todo+=("$s")
  fi
done
if [[ ${#todo[@]} -eq 0 ]]; then
  log "all ${#selected[@]} stand-in images up to date"
  exit 0
fi

# ---- the common root filesystem ---------------------------------------------------------------
WORK=$(mktemp -d /tmp/stackgen-standin.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
install -d -m 0755 "$ROOT" # the tar's "." becomes the container's "/"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,root,var,run,standin/www}
install -d -m 1777 "$ROOT/tmp" "$ROOT/var/tmp"
install -m 0755 "$BUSYBOX" "$ROOT/bin/busybox"
# Equivalent of `busybox --install -s /bin`, with relative links so the tree is host-independent.
for applet in $("$BUSYBOX" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$ROOT/bin/$applet"
done
install -m 0755 "$HERE/standin/run" "$HERE/standin/shim" "$HERE/standin/jq" \
  "$HERE/standin/wget" "$HERE/standin/nc" "$ROOT/standin/"
# wget and nc wrappers map the options busybox lacks (wget -T/--timeout, nc -z); see standin/.
for w in wget nc; do
  for d in bin usr/bin usr/local/bin; do ln -sfn "/standin/$w" "$ROOT/$d/$w"; done
done
for shim in "${SHIMS[@]}"; do
  ln -sfn /standin/shim "$ROOT/usr/local/bin/$shim"
  ln -sfn /standin/shim "$ROOT/usr/bin/$shim"
done
ln -sfn /standin/shim "$ROOT/bin/bash"

# /bin/sh is Debian's dash, not busybox ash: Debian's busybox-static ash runs its own applets
# before searching PATH, so in `sh -c` (CMD-SHELL healthchecks) `wget`/`nc` would bypass the
# wrappers above (and busybox wget segfaults on -T). dash searches PATH like the real images'
# shells. `ash` stays busybox. dash needs libc, copied with the loader.
copy_with_libs() { # BINARY ROOT DEST
  local lib
  install -D -m 0755 "$1" "$2$3"
  while read -r lib; do
    [[ -e $2$lib ]] && continue
    mkdir -p "$2$(dirname "$lib")"
    cp -L "$lib" "$2$lib"
  done < <(ldd "$1" | grep -oE '/[^ ]+' | sort -u)
}
if [[ -x $DASH ]]; then
  copy_with_libs "$DASH" "$ROOT" /bin/dash
  ln -sfn dash "$ROOT/bin/sh"
else
  log "WARNING: $DASH not found; /bin/sh stays busybox ash (wrappers bypassed in sh -c)"
fi
ln -sfn /standin/jq "$ROOT/usr/local/bin/jq"
ln -sfn /standin/jq "$ROOT/usr/bin/jq"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
: >"$ROOT/etc/hosts"
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/hostname"

www=$ROOT/standin/www
echo "stackgen stand-in" >"$www/index.html"
# Paths that are a prefix of another path must be directories.
for p in "${HEALTH_PATHS[@]}"; do
  p=${p%/}
  for q in "${HEALTH_PATHS[@]}"; do
    if [[ $q == "$p"/?* ]]; then mkdir -p "$www$p"; fi
  done
done
for p in "${HEALTH_PATHS[@]}"; do
  if [[ $p == */ || -d $www${p%/} ]]; then
    mkdir -p "$www${p%/}"
    echo OK >"$www${p%/}/index.html"
  else
    mkdir -p "$(dirname "$www$p")"
    echo OK >"$www$p"
  fi
done

pack() { # DIR TAR
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$1" -cf "$2" .
}

common_tar=$WORK/rootfs.tar
pack "$ROOT" "$common_tar"

caddy_tar=""
build_caddy_tar() {
  [[ -n $CADDY ]] || die "caddy not found (apt-get install caddy)"
  local croot=$WORK/caddy-root
  cp -a "$ROOT" "$croot"
  # With the shared libraries of the Debian build (libc, libzstd, the loader) at ldd's paths.
  copy_with_libs "$CADDY" "$croot" /usr/bin/caddy
  mkdir -p "$croot/etc/caddy" "$croot/usr/share/caddy" "$croot/srv"
  install -m 0644 "$HERE/standin/Caddyfile" "$croot/etc/caddy/Caddyfile"
  echo "stackgen stand-in caddy" >"$croot/usr/share/caddy/index.html"
  # Like the real image: XDG dirs /config and /data (volumes there inherit the mode).
  install -d -m 1777 "$croot/config" "$croot/data"
  caddy_tar=$WORK/caddy-rootfs.tar
  pack "$croot" "$caddy_tar"
}

# ---- import -------------------------------------------------------------------------------------
for s in "${todo[@]}"; do
  read -r name ports <<<"$s"
  ref=$PREFIX/$name:$TAG
  h=$(image_hash "$s")
  [[ $ports == - ]] && ports=""
  if [[ $name == caddy ]]; then
    [[ -n $caddy_tar ]] || build_caddy_tar
    # Like the real caddy image: no ENTRYPOINT, CMD runs caddy, so a compose `command:` replaces it.
    docker import \
      --change "CMD [\"caddy\", \"run\", \"--config\", \"/etc/caddy/Caddyfile\", \"--adapter\", \"caddyfile\"]" \
      --change "ENV PATH=$PATH_ENV" \
      --change "ENV XDG_CONFIG_HOME=/config" \
      --change "ENV XDG_DATA_HOME=/data" \
      --change "ENV STANDIN_PORTS=2019" \
      --change "ENV STANDIN_NAME=$name" \
      --change "WORKDIR /srv" \
      --change "LABEL $LABEL=$h" \
      --change "LABEL org.stackgen.standin.ports=\"$ports\"" \
      "$caddy_tar" "$ref" >/dev/null
  else
    ep='["/standin/run"'
    for p in $ports; do ep+=", \"$p\""; done
    ep+=']'
    docker import \
      --change "ENTRYPOINT $ep" \
      --change "ENV PATH=$PATH_ENV" \
      --change "ENV STANDIN_NAME=$name" \
      --change "LABEL $LABEL=$h" \
      --change "LABEL org.stackgen.standin.ports=\"$ports\"" \
      "$common_tar" "$ref" >/dev/null
  fi
  log "built $ref (ports: ${ports:-none})"
done
# Rebuilt images leave their predecessors untagged: drop those.
docker image prune -f --filter "label=$LABEL" >/dev/null || true
log "built ${#todo[@]} of ${#selected[@]} stand-in images"
