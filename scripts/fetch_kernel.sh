#!/usr/bin/env bash
# Fetch Debian's current amd64 kernel package and unpack it (NOT install it) into a cache folder,
# so `deno task build-netboot --kernel ... --modules ...` has a kernel on any machine.
# Prints the vmlinuz and modules paths (last two lines: KERNEL=... and MODULES=...).
#
# Usage: scripts/fetch_kernel.sh [CACHE_DIR]   (default: .cache/kernel in the repo)
# Env:   KERNEL_PACKAGE=linux-image-6.1.0-NN-amd64 to pin a package instead of the current one.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${1:-$repo/.cache/kernel}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

pkg="${KERNEL_PACKAGE:-}"
if [[ -z "$pkg" ]]; then
  # The meta package depends on exactly one versioned image package; that one carries the files.
  pkg="$(apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)"
  if [[ -z "$pkg" ]]; then
    echo "fetch_kernel: cannot find the kernel package behind linux-image-amd64;" \
      "run 'apt-get update' first (or set KERNEL_PACKAGE=linux-image-6.1.0-NN-amd64)" >&2
    exit 1
  fi
fi
kver="${pkg#linux-image-}"
root="$cache/$pkg"

if [[ ! -f "$root/boot/vmlinuz-$kver" || ! -d "$root/lib/modules/$kver" ]]; then
  echo "fetch_kernel: downloading $pkg (about 70 MB) into $cache" >&2
  rm -rf "$root" "$cache"/"$pkg"_*.deb
  (cd "$cache" && apt-get download "$pkg" >&2)
  deb="$(ls "$cache"/"$pkg"_*.deb | head -n1)"
  echo "fetch_kernel: unpacking $(basename "$deb")" >&2
  dpkg -x "$deb" "$root.partial"
  mv "$root.partial" "$root"
  rm -f "$deb"
fi

# The package's install script would run depmod; we did not install it, so there is no
# modules.dep. build-netboot resolves dependencies itself, but a modules.dep lets modprobe work
# on a developer's machine too, so write one when busybox is at hand.
if [[ ! -f "$root/lib/modules/$kver/modules.dep" ]] && command -v busybox >/dev/null; then
  busybox depmod -b "$root" "$kver" >&2 || echo "fetch_kernel: depmod failed (not needed)" >&2
fi

echo "KERNEL=$root/boot/vmlinuz-$kver"
echo "MODULES=$root/lib/modules/$kver"
