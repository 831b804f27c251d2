#!/usr/bin/env bash
# Runs the README's quick start verbatim: the commands of the first ```sh block under
# "## Quick start", one by one as written, in a new empty directory, then checks that the tenant
# it started is running with every service healthy, and takes it down. When README and reality
# diverge (a flag renamed, a default that needs a secret, a service that never gets healthy),
# this fails.
#
# The only thing added to what an operator types: right after the block's `stackgen init`, the
# lines of $QUICKSTART_IMAGE_OVERRIDES (`<SERVICE>_IMAGE=...`, as image_overrides() in
# tests/common/mod.rs makes them) are appended to the manifest, so the stack runs the local test
# images (no image registry is reachable in CI). Unset, the pinned images are pulled, as on a
# real host.
#
# Usage (as root, Docker engine and Compose v2 running, jq installed):
#   STACKGEN=target/debug/stackgen [QUICKSTART_IMAGE_OVERRIDES=...] tests/quickstart.sh
# Normally run by `cargo test --test integration readme_quick_start_runs_verbatim`.
#
# Safety: the quick start's tenant is a fixed name (team-a). If anything on this Docker engine
# already belongs to that compose project or carries its stackgen label, the script refuses and
# touches nothing; otherwise it removes only what the quick start created.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
README=${QUICKSTART_README:-$ROOT_DIR/README.md}
STACKGEN=${STACKGEN:-$ROOT_DIR/target/debug/stackgen}

say() { printf '[quickstart] %s\n' "$*" >&2; }
die() { printf '[quickstart] FAIL: %s\n' "$*" >&2; exit 1; }

[[ -x $STACKGEN ]] || die "no stackgen binary at $STACKGEN (build it, or set STACKGEN)"
command -v jq >/dev/null || die "jq is missing (see .ci/install-deps.sh)"

# The block: the first ```sh fence after the "## Quick start" heading, up to its closing fence.
mapfile -t COMMANDS < <(awk '
  /^## / { in_section = ($0 == "## Quick start"); next }
  in_section && !in_block && /^```sh$/ { in_block = 1; next }
  in_block && /^```$/ { exit }
  in_block && NF && $1 !~ /^#/ { print }
' "$README")
((${#COMMANDS[@]} > 0)) || die "$README has no \`\`\`sh block under \"## Quick start\""
for c in "${COMMANDS[@]}"; do
  # One line per command: a continuation would be run as two broken commands.
  [[ $c != *'\' ]] || die "quick start line ends with a backslash (keep one command per line): $c"
done

# The tenant the block starts: the argument of its `stackgen up`.
TENANT=
for c in "${COMMANDS[@]}"; do
  read -r -a words <<<"$c"
  if [[ ${words[0]} == stackgen && ${words[1]:-} == up && -n ${words[2]:-} ]]; then
    TENANT=${words[2]}
  fi
done
[[ -n $TENANT ]] || die "the quick start has no \`stackgen up TENANT\` line, so there is nothing to check"

# One quick start at a time on this engine (parallel test runs would share the tenant name).
exec 9>/tmp/stackgen-quickstart.lock
flock -w 900 9 || die "another quick start run holds /tmp/stackgen-quickstart.lock"

existing=$(docker ps -aq --filter "label=com.docker.compose.project=$TENANT")
existing+=$(docker ps -aq --filter "label=com.stackgen.tenant=$TENANT")
[[ -z $existing ]] || die "containers of a tenant or compose project named $TENANT already exist on this engine; not touching them (remove them, or run on another host)"

WORK=$(mktemp -d /tmp/stackgen-quickstart.XXXXXX)
BIN=$WORK/.bin
mkdir -p "$BIN"
ln -s "$(cd "$(dirname "$STACKGEN")" && pwd)/$(basename "$STACKGEN")" "$BIN/stackgen"
export PATH=$BIN:$PATH
STARTED=

cleanup() {
  local rc=$?
  if [[ -n $STARTED ]]; then
    (cd "$WORK/run" && stackgen down "$TENANT" >/dev/null 2>&1) || true
    # The front door `up` started (it goes once no tenant of this manifest runs).
    (cd "$WORK/run" && stackgen down edge >/dev/null 2>&1) || true
    # A failed run may leave containers compose no longer knows about: by label, and only
    # those carrying both this tenant's label and its project (nothing else existed before).
    for id in $(docker ps -aq --filter "label=com.stackgen.tenant=$TENANT" \
      --filter "label=com.docker.compose.project=$TENANT"); do
      docker rm -f "$id" >/dev/null 2>&1 || true
    done
    for net in "ai-platform-$TENANT" "ai-platform-$TENANT-internal" "ai-platform-$TENANT-front"; do
      docker network rm "$net" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# A fresh, empty directory, as the README asks for ($PWD in the block is this one).
mkdir "$WORK/run"
cd "$WORK/run"
for c in "${COMMANDS[@]}"; do
  printf '$ %s\n' "$c"
  read -r -a words <<<"$c"
  [[ ${words[0]} == stackgen && ${words[1]:-} == up ]] && STARTED=1
  bash -euo pipefail -c "$c" </dev/null || die "the README's quick start fails at: $c"
  if [[ ${words[0]} == stackgen && ${words[1]:-} == init && -n ${QUICKSTART_IMAGE_OVERRIDES:-} ]]; then
    printf '%s\n' "$QUICKSTART_IMAGE_OVERRIDES" >>.env
    say "appended the local test images to .env (QUICKSTART_IMAGE_OVERRIDES)"
  fi
done

# Every service of the tenant is running and healthy.
status=$(stackgen status "$TENANT" --json)
summary=$(jq -r --arg t "$TENANT" \
  '.tenants[] | select(.tenant == $t) | "\(.state) \(.running) \(.healthy) \(.services | length)"' \
  <<<"$status")
read -r state running healthy total <<<"$summary"
[[ $state == running && $total -gt 0 && $running == "$total" && $healthy == "$total" ]] ||
  die "$TENANT is not running and healthy after the quick start: state=$state running=$running healthy=$healthy of $total"
edge=$(jq -r '.edge.state // "absent"' <<<"$status")
[[ $edge == running ]] || die "the front door is $edge after the quick start"
say "ok: $TENANT running, $healthy of $total services healthy, behind the front door"

# Down, as the README says; nothing of the tenant is left running.
stackgen down "$TENANT"
left=$(docker ps -q --filter "label=com.stackgen.tenant=$TENANT")
[[ -z $left ]] || die "containers of $TENANT still run after \`stackgen down\`: $left"
stackgen down edge
say "ok: quick start ran verbatim, came up healthy and went down"
