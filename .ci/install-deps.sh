#!/usr/bin/env bash
# Installs the machine-level tools stackgen's tests need, on Debian 12 (bookworm), as root.
#
#   docker.io (dockerd, containerd, runc), iptables, iproute2 (`ip`, for the second engine's
#   bridge), apparmor (apparmor_parser, aa-status),
#   caddy, tmux, busybox-static, mmdebstrap (the real-program test images), hyperfine, jq,
#   python3-venv (scripts/test.sh installs kubernetes-validate into a venv),
#   fuse-overlayfs (storage-driver fallback)
#   from bookworm, and Compose v2 (package docker-compose) from Debian 13 (trixie), pinned so
#   that nothing else comes from trixie. The trixie source is derived from the machine's own
#   Debian source file, so no archive host is written here.
#
# Idempotent: when everything is present it does no apt work at all and returns in well under
# a second.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
log() { printf '[install-deps] %s\n' "$*" >&2; }
die() { printf '[install-deps] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -E bash "$0" "$@"
  fi
  die "must run as root"
fi

BOOKWORM_PKGS=(
  docker.io containerd runc iptables
  iproute2
  apparmor
  caddy
  tmux
  busybox-static
  mmdebstrap
  hyperfine
  jq
  python3-venv
  curl # e2e_edge.rs: requests through the front door (--resolve, --cacert)
  fuse-overlayfs
  ca-certificates
)
COMPOSE_PKG=docker-compose
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
TRIXIE_SOURCES=/etc/apt/sources.list.d/stackgen-trixie.sources
TRIXIE_PREFS=/etc/apt/preferences.d/stackgen-trixie
PLUGIN_DIRS=(/usr/libexec/docker/cli-plugins /usr/local/lib/docker/cli-plugins)

pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# Prints the path of a Compose v2 binary, if one is installed.
find_compose_v2() {
  local c
  for c in /usr/libexec/docker/cli-plugins/docker-compose /usr/lib/docker/cli-plugins/docker-compose \
           /usr/local/lib/docker/cli-plugins/docker-compose /usr/bin/docker-compose; do
    [[ -x $c ]] || continue
    c=$(readlink -f "$c")
    if "$c" version --short 2>/dev/null | grep -Eq '^v?2\.'; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  return 1
}

# Makes `docker compose` (CLI plugin form) work for every docker client on the machine
# (/usr/local/bin/docker and /usr/bin/docker), and keeps a standalone `docker-compose`.
link_compose_plugin() {
  local bin dir
  bin=$(find_compose_v2) || die "no Compose v2 binary found after install"
  for dir in "${PLUGIN_DIRS[@]}"; do
    mkdir -p "$dir"
    if [[ $(readlink -f "$dir/docker-compose" 2>/dev/null || true) != "$bin" ]]; then
      ln -sfn "$bin" "$dir/docker-compose"
      log "linked $dir/docker-compose -> $bin"
    fi
  done
  if ! command -v docker-compose >/dev/null 2>&1; then
    ln -sfn "$bin" /usr/local/bin/docker-compose
    log "linked /usr/local/bin/docker-compose -> $bin"
  fi
}

compose_ok() {
  local d
  find_compose_v2 >/dev/null || return 1
  for d in "${PLUGIN_DIRS[@]}"; do
    [[ -x $d/docker-compose ]] || return 1
  done
  for d in /usr/local/bin/docker /usr/bin/docker; do
    [[ -x $d ]] || continue
    "$d" compose version 2>/dev/null | grep -Eq 'v?2\.' || return 1
  done
  docker-compose version 2>/dev/null | grep -Eq 'v?2\.' || return 1
}

missing=()
for p in "${BOOKWORM_PKGS[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]] && compose_ok; then
  log "all tools already installed"
  exit 0
fi

# --- trixie source for Compose v2, derived from the machine's own bookworm source ------------
write_trixie_source() {
  local uris="" signed=""
  if [[ -r $DEBIAN_SOURCES ]]; then
    # First deb822 stanza that lists the plain "bookworm" suite (not -security/-updates).
    # Prints two lines: the URIs value and the Signed-By value.
    local parsed
    parsed=$(awk '
      function flush() {
        if (!done && suite_ok && uris != "") { print uris; print signed; done = 1 }
        uris = ""; signed = ""; suite_ok = 0
      }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      /^URIs:/      { sub(/^URIs:[[:space:]]*/, ""); uris = $0; next }
      /^Signed-By:/ { sub(/^Signed-By:[[:space:]]*/, ""); signed = $0; next }
      /^Suites:/    { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite_ok = 1; next }
      END { flush() }
    ' "$DEBIAN_SOURCES")
    uris=$(sed -n 1p <<<"$parsed")
    signed=$(sed -n 2p <<<"$parsed")
  fi
  if [[ -z $uris && -r /etc/apt/sources.list ]]; then
    # One-line format fallback: "deb [opts] URI bookworm main ..."
    uris=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { if ($(i+1) == "bookworm") { print $i; exit } } }' /etc/apt/sources.list)
  fi
  [[ -n $uris ]] || die "could not derive a Debian archive URI from $DEBIAN_SOURCES or /etc/apt/sources.list"
  [[ -n $signed ]] || signed=/usr/share/keyrings/debian-archive-keyring.gpg

  local want
  want=$(printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "$uris" "$signed")
  if [[ ! -f $TRIXIE_SOURCES || $(cat "$TRIXIE_SOURCES") != "$want" ]]; then
    printf '%s\n' "$want" >"$TRIXIE_SOURCES"
    log "wrote $TRIXIE_SOURCES (derived from the machine's bookworm source)"
  fi

  # Specific pin first: apt uses the first matching record.
  local prefs
  prefs=$(cat <<'EOF'
Explanation: stackgen: take Compose v2 (docker-compose) from trixie
Package: docker-compose
Pin: release n=trixie
Pin-Priority: 990

Explanation: stackgen: nothing else from trixie unless asked for explicitly
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOF
)
  if [[ ! -f $TRIXIE_PREFS || $(cat "$TRIXIE_PREFS") != "$prefs" ]]; then
    printf '%s\n' "$prefs" >"$TRIXIE_PREFS"
    log "wrote $TRIXIE_PREFS"
  fi
}

write_trixie_source

log "apt-get update"
apt-get update -qq -o Acquire::Retries=3

APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)

if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing from bookworm: ${missing[*]}"
  apt-get install "${APT_OPTS[@]}" "${missing[@]}" >/tmp/install-deps-apt.log 2>&1 \
    || { tail -n 50 /tmp/install-deps-apt.log >&2; die "apt-get install failed (log: /tmp/install-deps-apt.log)"; }
fi

if ! find_compose_v2 >/dev/null; then
  # Dry run first: docker-compose must be the only package that comes from trixie; in particular
  # libc6 must not be upgraded.
  sim=$(apt-get install -s "${APT_OPTS[@]}" "$COMPOSE_PKG" 2>&1) || { printf '%s\n' "$sim" >&2; die "apt-get -s $COMPOSE_PKG failed"; }
  insts=$(grep '^Inst ' <<<"$sim" || true)
  printf '%s\n' "$insts" | sed 's/^/[install-deps]   plan: /' >&2
  if grep -Eq '^Inst (libc6|libc-bin|libc6-dev) ' <<<"$insts"; then
    die "installing $COMPOSE_PKG would upgrade libc6; refusing"
  fi
  # Inst lines name the release by archive (stable/testing/...), which shifts over time, so
  # ask apt-cache madison which suite each planned version comes from.
  from_trixie=()
  while read -r _ pkg rest; do
    ver=$(sed -E 's/^(\[[^]]*\] )?\(([^ ]+) .*/\2/' <<<"$rest")
    if apt-cache madison "$pkg" 2>/dev/null | awk -F'|' -v v="$ver" '{gsub(/ /, "", $2)} $2 == v && $3 ~ / trixie\// {f = 1} END {exit !f}'; then
      from_trixie+=("$pkg")
    fi
  done <<<"$insts"
  [[ " ${from_trixie[*]-} " == *" $COMPOSE_PKG "* ]] || die "$COMPOSE_PKG would not come from trixie (pin not effective?)"
  for pkg in "${from_trixie[@]}"; do
    [[ $pkg == "$COMPOSE_PKG" ]] || die "installing $COMPOSE_PKG would also pull $pkg from trixie; refusing"
  done
  log "installing $COMPOSE_PKG (Compose v2) from trixie"
  apt-get install "${APT_OPTS[@]}" "$COMPOSE_PKG" >>/tmp/install-deps-apt.log 2>&1 \
    || { tail -n 50 /tmp/install-deps-apt.log >&2; die "apt-get install $COMPOSE_PKG failed"; }
fi

link_compose_plugin
compose_ok || die "docker compose v2 not usable after install"

for t in dockerd containerd runc iptables apparmor_parser caddy tmux busybox mmdebstrap hyperfine jq docker-compose; do
  command -v "$t" >/dev/null 2>&1 || die "$t missing after install"
done
log "compose: $(docker compose version 2>&1)"
log "done"
