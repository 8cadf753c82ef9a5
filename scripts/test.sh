#!/usr/bin/env bash
# The test command: installs what the tests need, runs the unit and integration tests and the
# netboot end-to-end test, and ends with one totals line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
# Deno from PATH, else from the npm package "deno" through npx (only Node.js and npm needed).
if ! command -v deno >/dev/null 2>&1; then deno() { npx --yes deno "$@"; }; fi
bash scripts/install_packages.sh || exit 1
export NO_COLOR=1

passed=0; failed=0; status=0
log=$(mktemp)

echo "== deno test (unit and integration) =="
deno task test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1)
if [ -z "$line" ]; then
  echo "deno test printed no summary (exit $rc)"; failed=$((failed + 1)); status=1
else
  passed=$((passed + $(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$line")))
  [ "$rc" -eq 0 ] || status=1
fi

if [ -f scripts/test_netboot.sh ] && [ "${CASCADE_SKIP_NETBOOT:-}" != 1 ]; then
  echo "== netboot end-to-end (QEMU VMs PXE-boot and image their disks) =="
  deno task test:netboot 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^netboot: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "the netboot test printed no summary (exit $rc)"; failed=$((failed + 1)); status=1
  else
    passed=$((passed + $(sed -E 's/^netboot: ([0-9]+) passed.*/\1/' <<<"$line")))
    failed=$((failed + $(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")))
    [ "$rc" -eq 0 ] || status=1
  fi
fi
rm -f "$log"
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
