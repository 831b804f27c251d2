#!/usr/bin/env bash
# Starts dockerd in the background unless a daemon already answers `docker info`.
#
# Tries the default configuration first (overlay2, iptables), then falls back: iptables-legacy
# when the nft backend does not work, then --iptables=false, then the fuse-overlayfs and vfs
# storage drivers. Each try must start within 60 s AND run a container (a tiny image imported
# from busybox-static), otherwise it is stopped and the next one is tried.
#
# Log: /tmp/dockerd.log (override with DOCKERD_LOG). Extra flags: DOCKERD_FLAGS.
# Prints `docker version`, the storage driver, cgroup version and security options.
set -euo pipefail

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT=${DOCKERD_WAIT:-60}
SMOKE_IMAGE=stackgen-standin/smoke:test
log() { printf '[dockerd] %s\n' "$*" >&2; }
die() { printf '[dockerd] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
command -v dockerd >/dev/null || die "dockerd not found (run .ci/install-deps.sh)"
command -v docker >/dev/null || die "docker client not found"

report() {
  docker version
  printf '[dockerd] storage driver: %s; cgroup: v%s (%s); security: %s\n' \
    "$(docker info --format '{{.Driver}}')" \
    "$(docker info --format '{{.CgroupVersion}}')" "$(docker info --format '{{.CgroupDriver}}')" \
    "$(docker info --format '{{join .SecurityOptions ","}}')" >&2
}

# Runs a throw-away container from a tiny imported image.
smoke() {
  local bb=/bin/busybox tmp
  [[ -x $bb ]] || bb=$(command -v busybox || true)
  if [[ -z $bb ]] || ldd "$bb" >/dev/null 2>&1; then
    log "no busybox-static: skipping container smoke test"
    return 0
  fi
  if ! docker image inspect "$SMOKE_IMAGE" >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    chmod 0755 "$tmp" # the tar's "." becomes the container's "/"
    mkdir -p "$tmp/bin"
    cp "$bb" "$tmp/bin/busybox"
    ln -s busybox "$tmp/bin/true"
    ln -s busybox "$tmp/bin/sh"
    tar --numeric-owner --owner=0 --group=0 -C "$tmp" -cf "$tmp.tar" .
    docker import --change 'CMD ["/bin/true"]' "$tmp.tar" "$SMOKE_IMAGE" >/dev/null || { rm -rf "$tmp" "$tmp.tar"; return 1; }
    rm -rf "$tmp" "$tmp.tar"
  fi
  timeout 60 docker run --rm --read-only --cap-drop ALL --user 2001:2001 "$SMOKE_IMAGE" /bin/true
}

if timeout 10 docker info >/dev/null 2>&1; then
  log "a docker daemon is already running"
  report
  exit 0
fi

# --- machine preparation --------------------------------------------------------------------
# cgroups: mounted on these machines (v1 hierarchies + unified); mount v2 if nothing is there.
if ! grep -q ' /sys/fs/cgroup' /proc/mounts; then
  log "no cgroup filesystem mounted; mounting cgroup2 on /sys/fs/cgroup"
  mount -t cgroup2 none /sys/fs/cgroup || log "WARNING: could not mount cgroup2"
fi
# iptables: the nft backend is Debian's default; switch to legacy if only that one works.
if ! iptables -w -nL >/dev/null 2>&1; then
  if command -v iptables-legacy >/dev/null && iptables-legacy -w -nL >/dev/null 2>&1; then
    log "iptables (nft) does not work here; switching to iptables-legacy"
    update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
    update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
  else
    log "WARNING: no working iptables; dockerd will need --iptables=false"
  fi
fi
# Stale pid files from a daemon that was killed (a reused machine) make dockerd refuse to start.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
  if [[ -f $pidfile ]] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
    rm -f "$pidfile"
  fi
done

# --- start, with fallbacks ------------------------------------------------------------------
ATTEMPTS=(
  ""
  "--iptables=false"
  "--storage-driver=fuse-overlayfs"
  "--storage-driver=fuse-overlayfs --iptables=false"
  "--storage-driver=vfs"
  "--storage-driver=vfs --iptables=false"
)
[[ -n ${DOCKERD_FLAGS:-} ]] && ATTEMPTS=("$DOCKERD_FLAGS")

stop_daemon() { # PID
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$1" 2>/dev/null || true
}

t_start=${EPOCHREALTIME/./}
for flags in "${ATTEMPTS[@]}"; do
  if [[ $flags == *fuse-overlayfs* ]] && { ! command -v fuse-overlayfs >/dev/null || [[ ! -c /dev/fuse ]]; }; then
    continue
  fi
  log "starting dockerd ${flags:-(default flags)}; log: $LOG"
  printf '\n==== %s dockerd %s\n' "$(date -Is)" "$flags" >>"$LOG"
  # setsid: the daemon outlives this script and the shell that ran it.
  # shellcheck disable=SC2086
  setsid dockerd $flags </dev/null >>"$LOG" 2>&1 &
  pid=$!
  up=0
  for _ in $(seq 1 $((WAIT * 5))); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if timeout 5 docker info >/dev/null 2>&1; then up=1; break; fi
    sleep 0.2
  done
  if [[ $up == 1 ]]; then
    if smoke; then
      log "dockerd (pid $pid) up in $(( (${EPOCHREALTIME/./} - t_start) / 1000 )) ms with ${flags:-default flags}"
      report
      exit 0
    fi
    log "dockerd started but cannot run a container with ${flags:-default flags}"
  else
    log "dockerd did not come up with ${flags:-default flags}:"
    tail -n 5 "$LOG" >&2 || true
  fi
  stop_daemon "$pid"
done
tail -n 40 "$LOG" >&2 || true
die "could not start dockerd (see $LOG)"
