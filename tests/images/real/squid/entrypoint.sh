#!/usr/bin/env bash
# Entrypoint of stackgen-real/squid:test, written for stackgen's end-to-end tests after the
# contract of ubuntu/squid:6.6-24.04 (not a copy of its script): it starts as root, prepares the
# cache, log and pid directories for the `proxy` user, creates missing cache directories, then
# runs squid in the foreground; squid itself drops to cache_effective_user (proxy).
#   no arguments          squid -N -f /etc/squid/squid.conf
#   arguments with "-"    squid -N <arguments>   (e.g. -f /other.conf -d 1)
#   anything else         executed as given
set -Eeuo pipefail

conf=/etc/squid/squid.conf
if [[ $# -eq 0 ]]; then
  set -- squid -N -f "$conf"
elif [[ $1 == -* ]]; then
  set -- squid -N "$@"
fi
if [[ $1 != squid && $1 != */squid ]]; then
  exec "$@"
fi

# The config file given with -f, if any.
prev=""
for a in "$@"; do
  [[ $prev == -f ]] && conf=$a
  prev=$a
done

if [[ $(id -u) -eq 0 ]]; then
  for d in /var/spool/squid /var/log/squid; do
    mkdir -p "$d"
    if [[ $(stat -c %U "$d") != proxy ]]; then
      chown -R proxy:proxy "$d"
    fi
  done
  mkdir -p /run
fi

# Like the upstream image, show squid's own log files on the container's output (squid itself,
# running as proxy, cannot open the root-owned /dev/stdout pipe).
for f in /var/log/squid/access.log /var/log/squid/cache.log; do
  tail -q -F "$f" 2>/dev/null &
done

# Create cache directories (cache_dir ufs/aufs/rock) that do not exist yet; a no-op without one.
squid -N -z -f "$conf" >&2

exec "$@"
