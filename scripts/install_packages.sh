#!/usr/bin/env bash
# Debian packages the tests use: QEMU/iPXE/busybox/dnsmasq for netboot, udpcast as the
# benchmark's peer, chromium for the dashboard's browser test, curl for the client benchmark;
# the file-system tools for the file-system-aware slicing tests and bench:bytes: mkntfs/ntfs-3g,
# mkfs.vfat/fsck.vfat, mkfs.exfat/fsck.exfat/exfat-fuse, mkfs.ext4/e2fsck/debugfs,
# mkfs.xfs/xfs_repair/xfs_io, mkfs.btrfs/btrfs check, pvcreate/vgcreate/vgcfgrestore (lvm2),
# sgdisk, sfdisk, mtools, partclone, zstd; grub-common (grub-script-check) checks rendered GRUB
# configs; grub-efi-amd64-bin gives the real-lab boot tests a standalone GRUB as the disk's own
# EFI loader (it marks the local boot); pxelinux + syslinux-common for the PXELINUX scenario.
set -euo pipefail
PKGS=(qemu-system-x86 ipxe-qemu ipxe busybox-static cpio zstd dnsmasq-base ovmf udpcast iproute2 chromium curl
  ntfs-3g dosfstools exfatprogs exfat-fuse e2fsprogs xfsprogs btrfs-progs lvm2 gdisk fdisk mtools
  partclone fuse3 grub-common grub-efi-amd64-bin pxelinux syslinux-common)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "Missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
