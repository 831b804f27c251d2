#!/usr/bin/env bash
# Stops the second Docker engine of .ci/start-second-engine.sh and deletes its bridge and its
# context. Its data root (/var/lib/sg-docker2, with the images loaded into it) is kept so the
# next start is quick; PURGE=1 deletes it too. Idempotent.
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "[dockerd2] must run as root" >&2; exit 1; }
if [[ -f /run/sg-docker2.pid ]]; then
  pid=$(cat /run/sg-docker2.pid)
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f /run/sg-docker2.pid
fi
docker context rm -f sg-host2 >/dev/null 2>&1 || true
ip link del sg-br1 2>/dev/null || true
iptables -D FORWARD -m physdev --physdev-is-bridged -j ACCEPT 2>/dev/null || true
if [[ ${PURGE:-0} == 1 ]]; then
  rm -rf /var/lib/sg-docker2
fi
echo "[dockerd2] stopped" >&2
