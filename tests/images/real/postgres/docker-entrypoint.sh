#!/usr/bin/env bash
# Entrypoint of stackgen-real/postgres:test, written for stackgen's end-to-end tests after the
# environment contract of the official postgres:18 image (not a copy of its script):
#
#   POSTGRES_PASSWORD   required (unless POSTGRES_HOST_AUTH_METHOD=trust); superuser password
#   POSTGRES_USER       superuser name (default postgres)
#   POSTGRES_DB         database created on first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  auth method of the "host all all all" pg_hba line (scram-sha-256)
#   PGDATA              default /var/lib/postgresql/18/docker (the 18+ layout)
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sh   run once, on an empty PGDATA
#
# Started as root it prepares PGDATA and the socket directory, then re-executes itself as the
# postgres user (uid 999). Started as any other UID it runs as that UID; initdb needs a passwd
# entry, which nss_wrapper provides when the UID is not in /etc/passwd.
set -Eeuo pipefail

msg() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
fail() { msg "error: $*"; exit 1; }

# `docker run IMAGE -c foo=bar` means `postgres -c foo=bar`
if [[ ${1:-} == -* ]]; then
  set -- postgres "$@"
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${PGDATA:=/var/lib/postgresql/18/docker}"
export POSTGRES_USER POSTGRES_DB PGDATA

socket_dir=/var/run/postgresql

prepare_dirs() {
  mkdir -p "$PGDATA" || fail "cannot create PGDATA $PGDATA as uid $(id -u)"
  chmod 00700 "$PGDATA" 2>/dev/null || :
  mkdir -p "$socket_dir" 2>/dev/null || :
  chmod 03777 "$socket_dir" 2>/dev/null || :
  if [[ $(id -u) -eq 0 ]]; then
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    chown postgres:postgres "$socket_dir"
  fi
}

if [[ ${1:-} == postgres && $(id -u) -eq 0 ]]; then
  prepare_dirs
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

# ---- from here on: not root, starting the server ---------------------------------------------
prepare_dirs
[[ -w $PGDATA ]] || fail "PGDATA $PGDATA is not writable by uid $(id -u)"

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  if [[ -z ${POSTGRES_PASSWORD:-} && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
    cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)
EOF
    exit 1
  fi

  # initdb refuses to run for a UID without a passwd entry: give it one through nss_wrapper.
  nss_files=()
  if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
    wrapper=$(ls /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so 2>/dev/null | head -n1 || true)
    [[ -n $wrapper ]] || fail "uid $(id -u) has no passwd entry and libnss_wrapper.so is missing"
    NSS_WRAPPER_PASSWD=$(mktemp /tmp/nss_passwd.XXXXXX)
    NSS_WRAPPER_GROUP=$(mktemp /tmp/nss_group.XXXXXX)
    { grep -v '^postgres:' /etc/passwd || :; printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA"; } >"$NSS_WRAPPER_PASSWD"
    { cat /etc/group; getent group "$(id -g)" >/dev/null 2>&1 || printf 'postgres:x:%s:\n' "$(id -g)"; } >"$NSS_WRAPPER_GROUP"
    export LD_PRELOAD=$wrapper NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    nss_files=("$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP")
  fi

  msg "initializing $PGDATA (superuser $POSTGRES_USER)"
  pwfile=$(mktemp /tmp/pgpw.XXXXXX)
  chmod 0600 "$pwfile"
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream
  # No --auth: like upstream, initdb's own lines (unix socket and loopback) stay "trust".
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >&2 \
    || { rm -f "$pwfile" "${nss_files[@]}"; fail "initdb failed"; }
  rm -f "$pwfile"
  if [[ ${#nss_files[@]} -gt 0 ]]; then
    unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    rm -f "${nss_files[@]}"
  fi
  # Every connection from another host must authenticate (scram-sha-256 unless told otherwise).
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

  # A temporary server on the unix socket only, for the init steps.
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories=$socket_dir -p 5432" start >&2 \
    || fail "the temporary server did not start"
  psql_init=(psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --host "$socket_dir" --username "$POSTGRES_USER")
  if [[ $POSTGRES_DB != postgres ]]; then
    msg "creating database $POSTGRES_DB"
    "${psql_init[@]}" --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >&2
  fi
  shopt -s nullglob
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        if [[ -x $f ]]; then msg "running $f"; "$f"
        else msg "sourcing $f"; # shellcheck disable=SC1090
          . "$f"; fi ;;
      *.sql) msg "running $f"; "${psql_init[@]}" --dbname "$POSTGRES_DB" -f "$f" >&2 ;;
      *.sql.gz) msg "running $f"; gzip -dc "$f" | "${psql_init[@]}" --dbname "$POSTGRES_DB" >&2 ;;
      *) msg "ignoring $f" ;;
    esac
  done
  shopt -u nullglob
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop >&2
  msg "init done; ready for start up"
fi

exec "$@"
