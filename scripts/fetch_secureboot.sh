#!/usr/bin/env bash
# Fetch Debian's signed boot chain for Secure Boot and unpack it (NOT install it) into a cache
# folder: shim-signed (shimx64.efi, signed by the Microsoft UEFI CA that PCs trust) and
# grub-efi-amd64-signed (grubnetx64.efi.signed: network GRUB signed by Debian, which shim
# trusts). The kernel from scripts/fetch_kernel.sh is signed by Debian too.
# Prints the folder (last line: SECURE_BOOT=...) for `build-netboot --secure-boot DIR`.
#
# Usage: scripts/fetch_secureboot.sh [CACHE_DIR]   (default: .cache/secureboot in the repo)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${1:-$repo/.cache/secureboot}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
pkgs=(shim-signed grub-efi-amd64-signed)

versions=""
for p in "${pkgs[@]}"; do
  v="$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
  if [[ -z $v || $v == "(none)" ]]; then
    echo "fetch_secureboot: no candidate for $p; run 'apt-get update' first" >&2
    exit 1
  fi
  versions+="${p}_${v}-"
done
root="$cache/${versions%-}"
root="${root//[:~]/_}"

if [[ ! -f $root/usr/lib/shim/shimx64.efi.signed ||
  ! -f $root/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed ]]; then
  echo "fetch_secureboot: downloading ${pkgs[*]} (about 2.5 MB) into $cache" >&2
  rm -rf "$root" "$root.partial" "$cache"/*.deb
  mkdir -p "$root.partial"
  (cd "$cache" && apt-get download "${pkgs[@]}" >&2)
  for deb in "$cache"/*.deb; do
    echo "fetch_secureboot: unpacking $(basename "$deb")" >&2
    dpkg -x "$deb" "$root.partial"
  done
  mv "$root.partial" "$root"
  rm -f "$cache"/*.deb
fi
echo "SECURE_BOOT=$root"
