#!/usr/bin/env bash
# Starts a second Docker engine beside the first, for the multi-engine end-to-end test
# (tests/integration/engines.rs, issue 13), and makes it reachable as the Docker context
# `sg-host2`. Idempotent: what already runs or exists is kept.
#
# Order matters: the second daemon gets a bridge of its own (sg-br1) FIRST; a second dockerd
# started with `--bridge none` or the default bridge would delete or fight over the first
# one's docker0. It runs with --iptables=false so it leaves the first engine's rules alone
# (published ports still work: docker-proxy binds them on the host), and it takes its
# networks' subnets from 10.212.0.0/16, a pool that neither the first engine's defaults nor the
# front doors' EDGE_SUBNET default (10.213.0.0/16) use: two bridges with the same subnet on one
# host would route each other's traffic astray.
#
# Arguments: images to copy from the first engine (`docker save | docker --context sg-host2
# load`), each only when missing there. Stop it with .ci/stop-second-engine.sh.
set -euo pipefail

SOCK=/run/sg-docker2.sock
CONTEXT=sg-host2
BRIDGE=sg-br1
BRIDGE_ADDR=172.31.251.1/24
LOG=${DOCKERD2_LOG:-/tmp/sg-dockerd2.log}
log() { printf '[dockerd2] %s\n' "$*" >&2; }
die() { printf '[dockerd2] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
timeout 10 docker info >/dev/null 2>&1 || die "the first engine does not answer (run .ci/start-dockerd.sh)"

if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up

if timeout 10 docker -H "unix://$SOCK" info >/dev/null 2>&1; then
  log "the second engine already runs on $SOCK"
else
  if [[ -f /run/sg-docker2.pid ]] && ! kill -0 "$(cat /run/sg-docker2.pid)" 2>/dev/null; then
    rm -f /run/sg-docker2.pid
  fi
  # A restart on a network store left by an earlier run deletes the FIRST engine's docker0 (seen
  # every time on this machine with dockerd 20.10.24: the second start's clean-up of its stale
  # default bridge takes the link named docker0 with it; a fresh store never does). The store
  # holds only this test engine's networks, which no test keeps across a restart: start afresh.
  rm -f /var/lib/sg-docker2/network/files/local-kv.db
  # The first engine's storage driver is the one known to work on this machine.
  driver=$(docker info --format '{{.Driver}}')
  log "starting dockerd on $SOCK (storage driver $driver); log: $LOG"
  # setsid: the daemon outlives this script and the shell that ran it.
  setsid dockerd --host "unix://$SOCK" --data-root /var/lib/sg-docker2 \
    --exec-root /run/sg-docker2 --pidfile /run/sg-docker2.pid --bridge "$BRIDGE" \
    --iptables=false --ip6tables=false --storage-driver "$driver" \
    --default-address-pool base=10.212.0.0/16,size=24 </dev/null >>"$LOG" 2>&1 &
  for _ in $(seq 1 300); do
    timeout 5 docker -H "unix://$SOCK" info >/dev/null 2>&1 && break
    kill -0 $! 2>/dev/null || { tail -n 20 "$LOG" >&2; die "dockerd exited (see $LOG)"; }
    sleep 0.2
  done
  timeout 5 docker -H "unix://$SOCK" info >/dev/null 2>&1 || die "dockerd did not answer within 60 s (see $LOG)"
fi

# The second engine runs without iptables, but the first one set FORWARD's policy to DROP, and
# traffic inside a bridge passes iptables too (br_netfilter): no two containers on one of the
# second engine's networks could talk (a tenant's caddy and its app, the front door and the
# tenant's caddy). On a host of its own an engine accepts that traffic itself; here one rule
# does it for traffic that stays on one bridge, never routed from one network to another (so the
# first engine's isolation between its networks is untouched).
if ! iptables -C FORWARD -m physdev --physdev-is-bridged -j ACCEPT 2>/dev/null; then
  iptables -I FORWARD 1 -m physdev --physdev-is-bridged -j ACCEPT
fi

if ! docker context inspect "$CONTEXT" >/dev/null 2>&1; then
  docker context create "$CONTEXT" --docker "host=unix://$SOCK" >/dev/null
fi

for image in "$@"; do
  if ! docker --context "$CONTEXT" image inspect "$image" >/dev/null 2>&1; then
    t0=${EPOCHREALTIME/./}
    docker save "$image" | docker --context "$CONTEXT" load >/dev/null
    log "loaded $image in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms"
  fi
done
log "context $CONTEXT ready: $(docker --context "$CONTEXT" version --format '{{.Server.Version}}')"

# The first engine's default bridge must survive. Should docker0 still be gone (the store clean-up
# above is what stopped it vanishing here), every `docker run` on the default network would fail
# ("could not find bridge docker0"): put the bridge back with the first engine's own address.
if ! ip link show docker0 >/dev/null 2>&1; then
  gateway=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
  subnet=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}')
  log "WARNING: the first engine's docker0 is gone; recreating it as $gateway/${subnet#*/}"
  ip link add docker0 type bridge
  ip addr add "$gateway/${subnet#*/}" dev docker0
  ip link set docker0 up
fi
