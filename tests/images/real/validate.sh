#!/usr/bin/env bash
# Runs a real validator on one config file, in the stackgen-real images, without network:
#
#   validate.sh prometheus FILE   promtool check config   (mounted at /etc/prometheus/prometheus.yml)
#   validate.sh squid FILE        squid -k parse -f       (mounted at /etc/squid/squid.conf)
#   validate.sh caddy FILE        caddy validate --adapter caddyfile --config (at /etc/caddy/Caddyfile)
#   validate.sh litellm FILE      litellm's proxy loader, ProxyConfig.load_config (at /app/config.yaml;
#                                 image stackgen-real/litellm:test, see litellm/check_config.py)
#   validate.sh sql FILE          a throwaway postgres container (stackgen-real/postgres:test, no
#                                 network, temporary password); the file runs with
#                                 psql -v ON_ERROR_STOP=1 as POSTGRES_USER on POSTGRES_DB
#                                 (both default to postgres; set them like the stack does)
#
# The file is bind-mounted read-only where the stack mounts it. Exit status: the validator's
# (2 for bad usage, 125 when the throwaway postgres server does not come up or the litellm image
# is missing). Build the images first: tests/images/real/build.sh (and `build.sh litellm`)
set -euo pipefail

PREFIX=stackgen-real
TAG=test
usage() { printf 'usage: %s prometheus|squid|caddy|litellm|sql FILE\n' "${0##*/}" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
kind=$1
file=$(readlink -f -- "$2") || { printf 'validate: no such file: %s\n' "$2" >&2; exit 2; }
[[ -f $file && -r $file ]] || { printf 'validate: not a readable file: %s\n' "$2" >&2; exit 2; }

run() { # MOUNT_TARGET COMMAND...
  local target=$1; shift
  docker run --rm --network none -v "$file:$target:ro" "$PREFIX/base:$TAG" "$@"
}

case $kind in
  prometheus | promtool)
    exec_status=0; run /etc/prometheus/prometheus.yml promtool check config /etc/prometheus/prometheus.yml || exec_status=$?
    exit "$exec_status" ;;
  squid)
    exec_status=0; run /etc/squid/squid.conf squid -k parse -f /etc/squid/squid.conf || exec_status=$?
    exit "$exec_status" ;;
  caddy | caddyfile)
    exec_status=0
    run /etc/caddy/Caddyfile caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile || exec_status=$?
    exit "$exec_status" ;;
  litellm)
    # litellm's own proxy loader (ProxyConfig.load_config) in stackgen-real/litellm:test
    # (build.sh litellm); the file is where the stack mounts it. Exit 1: the loader rejects it.
    docker image inspect "$PREFIX/litellm:$TAG" >/dev/null 2>&1 ||
      { printf 'validate: no %s image: run tests/images/real/build.sh litellm\n' "$PREFIX/litellm:$TAG" >&2; exit 125; }
    exec_status=0
    docker run --rm --network none -v "$file:/app/config.yaml:ro" "$PREFIX/litellm:$TAG" \
      python3 /usr/local/lib/stackgen/check_config.py /app/config.yaml || exec_status=$?
    exit "$exec_status" ;;
  sql | postgres | psql)
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    name=stackgen-validate-sql-$$-$RANDOM
    password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    cleanup() { docker rm -f "$name" >/dev/null 2>&1 || :; }
    trap cleanup EXIT
    docker run -d --name "$name" --network none \
      -e POSTGRES_PASSWORD="$password" -e POSTGRES_USER="$user" -e POSTGRES_DB="$db" \
      -v "$file:/validate/input.sql:ro" --tmpfs /var/lib/postgresql \
      "$PREFIX/postgres:$TAG" >/dev/null
    # Ready = the final server (not the init-time one) accepts connections.
    for _ in $(seq 1 120); do
      if docker logs "$name" 2>&1 | grep -q 'init done; ready for start up' &&
        docker exec "$name" pg_isready -q -U "$user" -d "$db" 2>/dev/null; then
        ready=1; break
      fi
      [[ $(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null) == true ]] || break
      sleep 0.5
    done
    if [[ -z ${ready:-} ]]; then
      docker logs "$name" 2>&1 | tail -n 20 >&2
      printf 'validate: the throwaway postgres did not come up\n' >&2
      exit 125
    fi
    status=0
    docker exec -e PGPASSWORD="$password" "$name" \
      psql -v ON_ERROR_STOP=1 --no-psqlrc -h 127.0.0.1 -U "$user" -d "$db" -f /validate/input.sql || status=$?
    exit "$status" ;;
  *) usage ;;
esac
