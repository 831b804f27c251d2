#!/usr/bin/env bash
# Proves `validate.sh litellm` can fail, and passes what it should:
#   every reject-*.yaml here must exit 1 with the text of its `# expect:` line in the output;
#   every FILE given (default: the repo's stacks/*/litellm/config.yaml) must exit 0.
# Needs stackgen-real/litellm:test (tests/images/real/build.sh litellm).
#
# Usage: tests/images/real/litellm/selftest/run.sh [FILE...]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REAL=$(cd "$HERE/../.." && pwd)
ROOT=$(cd "$REAL/../../.." && pwd)
failed=0

for f in "$HERE"/reject-*.yaml; do
  expect=$(sed -n 's/^# expect: //p' "$f")
  out=$(bash "$REAL/validate.sh" litellm "$f" 2>/dev/null)
  status=$?
  if [[ $status -eq 1 && $out == *"$expect"* ]]; then
    printf 'ok    rejects %s: %s\n' "${f##*/}" "$expect"
  else
    printf 'FAIL  %s: exit %s (want 1 with "%s"):\n%s\n' "${f##*/}" "$status" "$expect" "$out"
    failed=1
  fi
done

accept=("$@")
if [[ ${#accept[@]} -eq 0 ]]; then
  shopt -s nullglob
  accept=("$ROOT"/stacks/*/litellm/config.yaml)
  shopt -u nullglob
fi
for f in "${accept[@]}"; do
  out=$(bash "$REAL/validate.sh" litellm "$f" 2>/dev/null)
  status=$?
  if [[ $status -eq 0 ]]; then
    printf 'ok    accepts %s\n' "$f"
  else
    printf 'FAIL  %s: exit %s (want 0):\n%s\n' "$f" "$status" "$out"
    failed=1
  fi
done
exit "$failed"
