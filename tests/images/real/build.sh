#!/usr/bin/env bash
# Builds local images that run REAL server programs from Debian packages, for the end-to-end tests
# (no image registry is needed; only Debian's package archive, and PyPI for chroma and litellm):
#
#   stackgen-real/base:test        Debian trixie minbase root fs (mmdebstrap | docker import)
#   stackgen-real/postgres:test    PostgreSQL 17 + pgvector, contract of postgres:18 (Debian)
#   stackgen-real/redis:test       Redis 8, contract of redis:8-alpine
#   stackgen-real/squid:test       squid 6, contract of ubuntu/squid:6.6-24.04
#   stackgen-real/prometheus:test  prometheus + promtool 2.53, contract of prom/prometheus:v3
#   stackgen-real/caddy:test       caddy 2.6, contract of caddy:2.11-alpine
#   stackgen-real/chroma:test      chromadb 1.5.9 (PyPI) server, contract of chromadb/chroma:1.5.9
#                                  (only when asked for by name: `build.sh chroma`, or WITH_CHROMA=1)
#   stackgen-real/litellm:test     litellm[proxy] 1.83.14 (PyPI), the release in
#                                  ghcr.io/berriai/litellm:v1.83.14-stable, as a config checker
#                                  (litellm/check_config.py; `build.sh litellm`, or WITH_LITELLM=1)
#
# Each service image is a small generated Dockerfile on top of the base plus the entrypoint
# script in <service>/ next to this file. See README.md for the contracts.
#
# Idempotent: an image is skipped when its label org.stackgen.real.hash equals the hash of its
# inputs (the base recipe; for a service image the base image id, its Dockerfile and its files).
# FORCE=1 rebuilds everything that is selected.
#
# Usage: tests/images/real/build.sh [SERVICE...]   (default: base and all but chroma and litellm)
# Needs root (mmdebstrap builds the root fs as root) and a running Docker engine.
set -euo pipefail

umask 022
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=stackgen-real
TAG=test
LABEL=org.stackgen.real.hash
SUITE=trixie
BASE=$PREFIX/base:$TAG
DEFAULT_SERVICES=(postgres redis squid prometheus caddy)
ALL_SERVICES=(postgres redis squid prometheus caddy chroma litellm)
CHROMA_VERSION=1.5.9
LITELLM_VERSION=1.83.14

PACKAGES=(
  postgresql-17 postgresql-17-pgvector
  redis-server redis-tools
  squid
  prometheus
  caddy
  libnss-wrapper busybox-static
  libcap2-bin # setcap for caddy's file capability (upstream's alpine image keeps libcap too)
  ca-certificates
)
# Debian-only extras the chroma image needs (kept out of the other images' PATH anyway).
CHROMA_PACKAGES=(python3 python3-venv dumb-init)

# Keep the root fs small: no docs, man pages, translations, locale sources; no LLVM (it only
# serves PostgreSQL's optional JIT: without llvmjit.so PostgreSQL just runs without JIT).
DPKG_EXCLUDES=(
  '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*'
  '/usr/share/lintian/*' '/usr/share/i18n/*'
  '/usr/lib/*/libLLVM*' '/usr/lib/*/libz3.so*'
  '/usr/lib/postgresql/*/lib/llvmjit*' '/usr/lib/postgresql/*/lib/bitcode/*'
)
# Before the packages are configured: the postgres user with the official image's uid/gid 999,
# so that postgresql-common's adduser finds it instead of allocating another uid.
ESSENTIAL_HOOK='printf "postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n" >>"$1/etc/passwd"; printf "postgres:x:999:\n" >>"$1/etc/group"'
# After: drop the cluster postgresql-common created (17/main), the Debian service configs we do not
# use, and anything host-specific.
CUSTOMIZE_HOOK='rm -rf "$1"/var/lib/postgresql/17 "$1"/etc/postgresql/17 "$1"/var/log/postgresql/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/var/log/*.log; : >"$1/etc/machine-id"; : >"$1/etc/resolv.conf"; : >"$1/etc/hostname"'

PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PG_PATH_ENV=/usr/lib/postgresql/17/bin:$PATH_ENV

log() { printf '[real-images] %s\n' "$*" >&2; }
die() { printf '[real-images] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (mmdebstrap, docker)"
command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable"

# ---- which images ------------------------------------------------------------------------------
want=("$@")
if [[ ${#want[@]} -eq 0 ]]; then
  want=("${DEFAULT_SERVICES[@]}")
  [[ ${WITH_CHROMA:-0} == 1 ]] && want+=(chroma)
  [[ ${WITH_LITELLM:-0} == 1 ]] && want+=(litellm)
fi
for s in "${want[@]}"; do
  [[ $s == base || " ${ALL_SERVICES[*]} " == *" $s "* ]] || die "no such image: $s (one of: base ${ALL_SERVICES[*]})"
done

# ---- the archive: derived from this machine's own apt sources, never written down ------------
# First deb822 stanza (or sources.list line) for a plain suite (not -security/-updates).
derive_mirror() {
  local f uri=""
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    uri=$(awk '
      function flush() { if (!done && plain && uris != "" && uris !~ /security/) { print uris; done = 1 } uris = ""; plain = 0 }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      /^URIs:/   { uris = $2; next }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+$/) plain = 1; next }
      END { flush() }' "$f")
    [[ -n $uri ]] && break
  done
  shopt -u nullglob
  if [[ -z $uri && -r /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\// && $i !~ /security/ && $(i+1) ~ /^[a-z]+$/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [[ -n $uri ]] || return 1
  printf '%s\n' "$uri"
}

# Ids of images this run replaced; removed at the end when nothing tags them any more.
replaced=()
note_replaced() { local id; id=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null) && replaced+=("$id") || :; }
remove_replaced() {
  local i id
  for ((i = ${#replaced[@]} - 1; i >= 0; i--)); do # children (service images) before the base
    id=${replaced[i]}
    [[ -z $(docker image inspect -f '{{join .RepoTags " "}}' "$id" 2>/dev/null) ]] && docker rmi "$id" >/dev/null 2>&1 || :
  done
}

label_of() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
sha() { sha256sum | cut -d' ' -f1; }

WORK=$(mktemp -d /tmp/stackgen-real.XXXXXX)
trap 'rm -rf "$WORK"; remove_replaced' EXIT

# ---- base ----------------------------------------------------------------------------------------
# One fixed recipe (stable hash): python3 is in the base only for chroma's sake and is removed
# from the other images.
base_packages=("${PACKAGES[@]}" "${CHROMA_PACKAGES[@]}")
base_recipe() {
  printf 'suite=%s\n' "$SUITE"
  printf 'pkg=%s\n' "${base_packages[@]}"
  printf 'exclude=%s\n' "${DPKG_EXCLUDES[@]}"
  printf 'essential=%s\ncustomize=%s\npath=%s\n' "$ESSENTIAL_HOOK" "$CUSTOMIZE_HOOK" "$PATH_ENV"
}
base_hash=$(base_recipe | sha)

build_base() {
  if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >"$WORK/apt.log" 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >"$WORK/apt.log" 2>&1; } \
      || { tail -n 30 "$WORK/apt.log" >&2; die "apt-get install mmdebstrap failed"; }
  fi
  local mirror
  mirror=$(derive_mirror) || die "could not derive a Debian archive URI from /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  local args=(--variant=minbase --format=tar --include="$(IFS=,; echo "${base_packages[*]}")"
    --essential-hook="$ESSENTIAL_HOOK" --customize-hook="$CUSTOMIZE_HOOK")
  local e
  for e in "${DPKG_EXCLUDES[@]}"; do args+=(--dpkgopt="path-exclude=$e"); done
  log "mmdebstrap $SUITE minbase (${#base_packages[@]} packages) ..."
  local t0=$SECONDS
  mmdebstrap "${args[@]}" "$SUITE" "$WORK/root.tar" "deb $mirror $SUITE main" >"$WORK/mmdebstrap.log" 2>&1 \
    || { tail -n 40 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed (log above)"; }
  log "root fs: $(du -h "$WORK/root.tar" | cut -f1) tar in $((SECONDS - t0))s"
  note_replaced "$BASE"
  docker import \
    --change "ENV PATH=$PATH_ENV" \
    --change "LABEL $LABEL=$base_hash" \
    --change 'CMD ["/bin/bash"]' \
    "$WORK/root.tar" "$BASE" >/dev/null
  rm -f "$WORK/root.tar"
  log "imported $BASE in $((SECONDS - t0))s total"
}

if [[ ${FORCE:-0} == 1 || $(label_of "$BASE") != "$base_hash" ]]; then
  build_base
else
  log "$BASE up to date"
fi
base_id=$(docker image inspect -f '{{.Id}}' "$BASE")

# ---- service images -------------------------------------------------------------------------------
# Healthcheck-relevant programs of the shared base that the upstream image does NOT have are
# removed in each service image (a healthcheck calling them must fail as it would upstream).
HIDE_COMMON='/usr/bin/redis-cli /usr/bin/psql /usr/bin/pg_isready /usr/bin/promtool /usr/bin/python3* /usr/bin/pydoc3* /usr/bin/squidclient'
# busybox applets as the alpine/busybox-based upstream images have them (sh, wget, nc, ...).
BUSYBOX_APPLETS='sh ash wget nc vi'

dockerfile() { # SERVICE
  case $1 in
  postgres) cat <<EOF
FROM $BASE
# postgres:18 (Debian) contract: root by default, entrypoint drops to postgres (999) or runs as any UID.
RUN rm -f $HIDE_COMMON /usr/bin/busybox \\
 && sed -ri "s/^#?(listen_addresses)\\s*=\\s*\\S+.*/\\1 = '*'/" /usr/share/postgresql/17/postgresql.conf.sample \\
 && grep -q "^listen_addresses = '\\*'" /usr/share/postgresql/17/postgresql.conf.sample \\
 && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql /var/lib/postgresql \\
 && chown postgres:postgres /var/run/postgresql /var/lib/postgresql \\
 && chmod 3777 /var/run/postgresql
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=$PG_PATH_ENV PG_MAJOR=17 LANG=C.UTF-8 PGDATA=/var/lib/postgresql/18/docker
VOLUME /var/lib/postgresql
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
EOF
  ;;
  redis) cat <<EOF
FROM $BASE
# redis:8-alpine contract: busybox userland (no bash), user redis 999:1000, WORKDIR /data.
RUN for a in $BUSYBOX_APPLETS; do ln -sf busybox /usr/bin/\$a; done \\
 && rm -f /usr/bin/bash /usr/bin/rbash \$(echo $HIDE_COMMON | tr ' ' '\\n' | grep -v redis-cli) \\
 && sed -i -e '/^postgres:/d' -e 's/^redis:x:[0-9]*:[0-9]*:/redis:x:999:1000:/' /etc/passwd \\
 && sed -i -e '/^postgres:/d' -e 's/^redis:x:[0-9]*:/redis:x:1000:/' /etc/group \\
 && mkdir /data && chown redis:redis /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
EOF
  ;;
  squid) cat <<EOF
FROM $BASE
# ubuntu/squid:6.6-24.04 contract: root, bash, entrypoint prepares dirs for proxy, squid -N.
RUN rm -f $HIDE_COMMON /usr/bin/busybox
COPY entrypoint.sh /usr/local/bin/entrypoint.sh
ENV TZ=UTC
EXPOSE 3128
ENTRYPOINT ["entrypoint.sh"]
EOF
  ;;
  prometheus) cat <<EOF
FROM $BASE
# prom/prometheus:v3 contract: busybox base, USER nobody, ENTRYPOINT /bin/prometheus.
RUN for a in $BUSYBOX_APPLETS; do ln -sf busybox /usr/bin/\$a; done \\
 && rm -f /usr/bin/bash /usr/bin/rbash \$(echo $HIDE_COMMON | tr ' ' '\\n' | grep -v promtool) \\
 && mkdir -p /prometheus /etc/prometheus \\
 && chown -R nobody:nogroup /etc/prometheus /prometheus
COPY prometheus.yml /etc/prometheus/prometheus.yml
USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
  ;;
  caddy) cat <<EOF
FROM $BASE
# caddy:2.11-alpine contract: root, busybox userland, file capability cap_net_bind_service on caddy.
RUN for a in $BUSYBOX_APPLETS; do ln -sf busybox /usr/bin/\$a; done \\
 && rm -f /usr/bin/bash /usr/bin/rbash $HIDE_COMMON \\
 && mkdir -p /config/caddy /data/caddy /etc/caddy /usr/share/caddy /srv \\
 && setcap cap_net_bind_service=+ep /usr/bin/caddy \\
 && getcap /usr/bin/caddy | grep -q cap_net_bind_service
COPY Caddyfile /etc/caddy/Caddyfile
COPY index.html /usr/share/caddy/index.html
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
EXPOSE 80 443 443/udp 2019
WORKDIR /srv
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
EOF
  ;;
  chroma) cat <<EOF
# Stage 1: chromadb from PyPI into a venv with a copied interpreter. pip trusts the machine's own
# CA bundle (build-context file host-ca.crt), which never reaches the final image.
FROM $BASE AS pip
LABEL org.stackgen.real.stage=chroma-pip
COPY host-ca.crt /tmp/host-ca.crt
RUN python3 -m venv --copies /opt/chroma \\
 && PIP_CERT=/tmp/host-ca.crt /opt/chroma/bin/pip install --no-cache-dir --disable-pip-version-check -q "chromadb==$CHROMA_VERSION"

# chromadb/chroma:$CHROMA_VERSION contract (rust/Dockerfile at that tag): debian:stable-slim with
# dumb-init, bash, grep, no curl/wget, root, ENTRYPOINT dumb-init -- chroma, CMD run /config.yaml
# (persist_path /data). The chromadb wheel's CLI runs the same Rust server; no python3 on PATH.
FROM $BASE
COPY --from=pip /opt/chroma /opt/chroma
RUN rm -f /usr/bin/busybox /usr/bin/redis-cli /usr/bin/psql /usr/bin/pg_isready /usr/bin/promtool /usr/bin/squidclient \\
    /usr/bin/python3* /usr/bin/pydoc3* \\
 && ln -s /opt/chroma/bin/chroma /usr/local/bin/chroma \\
 && chroma --help >/dev/null \\
 && mkdir -p /data
COPY config.yaml /config.yaml
EXPOSE 8000
ENTRYPOINT ["dumb-init", "--", "chroma"]
CMD ["run", "/config.yaml"]
EOF
  ;;
  litellm) cat <<EOF
# Stage 1: litellm with its proxy extra from PyPI into a venv, like chroma's (pip alone trusts
# host-ca.crt). The freeze records the dependencies that resolved (the wheel pins only its own).
FROM $BASE AS pip
LABEL org.stackgen.real.stage=litellm-pip
COPY host-ca.crt /tmp/host-ca.crt
RUN python3 -m venv /opt/litellm \\
 && PIP_CERT=/tmp/host-ca.crt /opt/litellm/bin/pip install --no-cache-dir --disable-pip-version-check -q "litellm[proxy]==$LITELLM_VERSION" \\
 && /opt/litellm/bin/pip freeze --all >/opt/litellm/pip-freeze.txt

# A validator, not a stand-in for the service: check_config.py loads a config through litellm's
# own proxy loader (ProxyConfig.load_config), offline. validate.sh litellm FILE runs it.
FROM $BASE
COPY --from=pip /opt/litellm /opt/litellm
RUN rm -f /usr/bin/busybox /usr/bin/redis-cli /usr/bin/psql /usr/bin/pg_isready /usr/bin/promtool /usr/bin/squidclient \\
 && ln -s /opt/litellm/bin/litellm /usr/local/bin/litellm \\
 && mkdir -p /app /usr/local/lib/stackgen
COPY check_config.py /usr/local/lib/stackgen/check_config.py
ENV PATH=/opt/litellm/bin:$PATH_ENV
WORKDIR /app
CMD ["python3", "/usr/local/lib/stackgen/check_config.py", "/app/config.yaml"]
EOF
  ;;
  *) die "no Dockerfile for $1" ;;
  esac
}

service_hash() { # SERVICE
  {
    printf 'base=%s\n' "$base_id"
    dockerfile "$1"
    local f
    # Top-level files only (litellm/selftest/ is not an input); `|| continue` keeps a trailing
    # directory from failing the function under set -e.
    for f in "$HERE/$1"/*; do [[ -f $f ]] || continue; printf '%s\n' "${f##*/}"; cat "$f"; done
  } | sha
}

build_service() { # SERVICE HASH
  local s=$1 h=$2 ctx=$WORK/ctx-$1 t0=$SECONDS
  mkdir -p "$ctx"
  [[ -d $HERE/$s ]] && cp -a "$HERE/$s"/. "$ctx"/
  if [[ $s == chroma || $s == litellm ]]; then
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/host-ca.crt" || die "no CA bundle for pip"
  fi
  dockerfile "$s" >"$ctx/Dockerfile"
  printf 'LABEL %s=%s\n' "$LABEL" "$h" >>"$ctx/Dockerfile"
  log "building $PREFIX/$s:$TAG"
  note_replaced "$PREFIX/$s:$TAG"
  # The legacy builder: no buildx on these machines, and it keeps file capabilities (setcap).
  DOCKER_BUILDKIT=0 docker build --force-rm --network "${BUILD_NETWORK:-default}" -t "$PREFIX/$s:$TAG" "$ctx" >"$WORK/build-$s.log" 2>&1 \
    || { tail -n 40 "$WORK/build-$s.log" >&2; die "docker build $s failed"; }
  # The untagged intermediate image of a multi-stage build (a pip stage): ours, by label.
  docker image prune -f --filter label=org.stackgen.real.stage >/dev/null 2>&1 || :
  log "built $PREFIX/$s:$TAG in $((SECONDS - t0))s"
}

for s in "${want[@]}"; do
  [[ $s == base ]] && continue
  h=$(service_hash "$s")
  if [[ ${FORCE:-0} == 1 || $(label_of "$PREFIX/$s:$TAG") != "$h" ]]; then
    build_service "$s" "$h"
  else
    log "$PREFIX/$s:$TAG up to date"
  fi
done
