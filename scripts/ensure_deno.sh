#!/usr/bin/env bash
# Make `deno` available: use the one on PATH, else install the npm package `deno`
# (the only way to get Deno on machines that reach npm but not Deno's own downloads).
set -euo pipefail
if command -v deno >/dev/null 2>&1; then exit 0; fi
echo "Installing Deno from the npm package \"deno\"..." >&2
if ! npm install -g deno >&2; then
  echo "Cannot install Deno with \"npm install -g deno\" (try as root, or install Deno yourself)" >&2
  exit 1
fi
command -v deno >/dev/null 2>&1 || { echo "Deno installed but not on PATH" >&2; exit 1; }
