#!/bin/sh
# Cascade finishing step (an example; groups file: finish = hostname.sh): write this PC's name
# into /etc/hostname of the system just imaged, on its ext4 root partition, without mounting
# it (debugfs from e2fsprogs, which build-netboot puts into the initramfs).
#
# The name: CASCADE_PC_NAME (the groups file's "mac = MAC NAME"), else
# ${HOSTNAME_PREFIX:-pc}-<MAC without colons> (set HOSTNAME_PREFIX = lab101 in the group).
# The partition: ROOT_PARTITION (a group setting, e.g. 2), else the first ext4 partition.
# Other settings in the environment: CASCADE_MAC, CASCADE_ADDRESS, CASCADE_DISK, CASCADE_GROUP,
# CASCADE_IMAGE, CASCADE_MASTER. A non-zero exit marks the PC failed on the dashboard.
set -eu
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin
disk=$CASCADE_DISK
name=${CASCADE_PC_NAME:-}
[ -n "$name" ] || name="${HOSTNAME_PREFIX:-pc}-$(echo "$CASCADE_MAC" | tr -d ':')"
case "$name" in *[!A-Za-z0-9.-]* | "") echo "Bad host name \"$name\""; exit 1 ;; esac

# The kernel read the partition table before the image was written: read it again (partx
# where the kernel will not: loop devices).
blockdev --rereadpt "$disk" 2>/dev/null || true
base=${disk##*/}
if ! ls -d /sys/block/"$base"/"$base"* >/dev/null 2>&1 && command -v partx >/dev/null; then
  partx -a "$disk" 2>/dev/null || true
  sleep 1
fi
found=""
for p in /sys/block/"$base"/"$base"*; do
  [ -f "$p/start" ] || continue
  if [ -n "${ROOT_PARTITION:-}" ] && [ "$(cat "$p/partition")" != "$ROOT_PARTITION" ]; then
    continue
  fi
  start=$(($(cat "$p/start") * 512))
  # ext2/3/4: the superblock starts 1024 bytes in, its magic 0xEF53 at byte 56 of it.
  magic=$(dd if="$disk" bs=1 skip=$((start + 1080)) count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')
  if [ "$magic" = "53ef" ]; then
    found="${p##*/} at byte $start"
    break
  fi
done
if [ -z "$found" ]; then
  echo "No ext4 partition on $disk${ROOT_PARTITION:+ numbered $ROOT_PARTITION}"
  exit 1
fi

fs="$disk?offset=$start"
echo "$name" > /tmp/hostname.$$
debugfs -w -f - "$fs" >/dev/null 2>&1 <<CMDS
mkdir /etc
rm /etc/hostname
write /tmp/hostname.$$ /etc/hostname
CMDS
rm -f /tmp/hostname.$$
got=$(debugfs -R "cat /etc/hostname" "$fs" 2>/dev/null)
if [ "$got" != "$name" ]; then
  echo "Cannot write /etc/hostname on $found of $disk (reads back \"$got\")"
  exit 1
fi
echo "hostname \"$name\" written to /etc/hostname on $found of $disk"
