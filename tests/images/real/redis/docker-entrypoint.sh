#!/bin/sh
# Entrypoint of stackgen-real/redis:test, written for stackgen's end-to-end tests after the
# contract of the official redis:8-alpine image (not a copy of its script):
#   - `docker run IMAGE --opt` and `docker run IMAGE file.conf` mean redis-server with them;
#   - as root it fixes the ownership of the working directory (/data) unless SKIP_FIX_PERMS is
#     set, and re-executes itself as the redis user unless SKIP_DROP_PRIVS is set;
#   - as any other UID it runs as that UID (the data directory must be writable by it);
#   - protected mode is turned off unless the config file sets it;
#   - anything that is not redis-server (e.g. `sh -c "..."`) is executed as given.
set -e

case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  if [ -z "${SKIP_FIX_PERMS:-}" ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || :
  fi
  if [ -z "${SKIP_DROP_PRIVS:-}" ]; then
    # full path: busybox ash would run its own (different) setpriv applet first
    exec /usr/bin/setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
fi

if [ "${1:-}" = redis-server ]; then
  conf=
  case "${2:-}" in *.conf) conf=$2 ;; esac
  if [ -z "$conf" ] || ! grep -Eq '^[[:space:]]*protected-mode' "$conf" 2>/dev/null; then
    set -- "$@" --protected-mode no
  fi
  # redis writes its files with the umask; keep them private unless the caller chose a umask.
  if [ "$(umask)" = 0022 ]; then umask 0077; fi
fi

exec "$@"
