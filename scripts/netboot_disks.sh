#!/usr/bin/env bash
# Disks for the real-lab boot scenarios of scripts/test_netboot.sh (Debian tools only):
#   netboot_disks.sh golden FILE   a 24 MiB GPT disk as a lab's golden image: an EFI system
#                                  partition (FAT, label EFI) whose \EFI\BOOT\BOOTX64.EFI is a
#                                  standalone GRUB that prints CASCADE-UEFI-DISK-BOOTED on the
#                                  serial console and powers off, and an ext4 root partition
#                                  holding 4 MiB of random data (so a short copy cannot compare
#                                  equal); partition 2 starts at sector 10240
#   netboot_disks.sh hostname FILE print /etc/hostname of FILE's ext4 partition (debugfs)
set -euo pipefail
ROOT_START=10240 # sectors: 1 MiB gap + 4 MiB ESP

cmd_golden() {
  local out=$1 work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cat >"$work/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_output serial console
echo CASCADE-UEFI-DISK-BOOTED
sleep 2
halt
CFG
  grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" \
    --install-modules="normal echo serial terminal sleep halt configfile" \
    --locales= --fonts= --themes= "boot/grub/grub.cfg=$work/grub.cfg"
  rm -f "$out"
  truncate -s 24M "$out"
  truncate -s 4M "$work/esp.img"
  mkfs.vfat -n EFI "$work/esp.img" >/dev/null
  mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
  mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  dd if="$work/esp.img" of="$out" bs=1M seek=1 conv=notrunc status=none
  local root_bytes=$(((24 * 1024 * 1024) - ROOT_START * 512 - 1024 * 1024))
  mkfs.ext4 -q -F -E "offset=$((ROOT_START * 512)),nodiscard" "$out" "$((root_bytes / 1024))k"
  head -c 4M /dev/urandom >"$work/random.bin"
  debugfs -w -R "write $work/random.bin random.bin" "$out?offset=$((ROOT_START * 512))" >/dev/null 2>&1
  # The table last: mke2fs wipes other signatures it finds on the file.
  sgdisk -o -n 1:2048:+4M -t 1:ef00 -c 1:EFI -n "2:$ROOT_START:0" -t 2:8300 "$out" >/dev/null
}

cmd_hostname() {
  debugfs -R "cat /etc/hostname" "$1?offset=$((ROOT_START * 512))" 2>/dev/null
}

case "${1:-}" in
golden) cmd_golden "$2" ;;
hostname) cmd_hostname "$2" ;;
*) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
