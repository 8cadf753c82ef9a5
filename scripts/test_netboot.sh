#!/usr/bin/env bash
# End-to-end netboot proof: build the initramfs, bring up an emulated LAN (netns + bridge +
# dnsmasq), serve /boot with createBootApp, PXE-boot ONE QEMU VM (TCG, virtio-net, blank virtio
# disk) through iPXE into our /init and the Cascade binary, and time each step.
# Until the master serves a run here, the client only waits for one: the test passes when the
# VM's console shows the client ran and reported (the chain up to Cascade works).
#
# Env:
#   DHCP=full      dnsmasq is the LAN's DHCP server (default)
#   DHCP=proxy     a plain DHCP server stands for the lab's; our dnsmasq runs in proxy mode
#   FIRMWARE=bios  SeaBIOS + QEMU's iPXE NIC ROM (default)
#   FIRMWARE=uefi  OVMF + QEMU's iPXE EFI ROM
#   FIRMWARE=uefi-pxe  OVMF's own PXE, no iPXE ROM: fetches snponly.efi over TFTP first
#   LOCAL=1        the master answers "boot the local disk" (BIOS): the disk holds a boot
#                  sector that prints CASCADE-LOCAL-DISK-BOOTED
#   ZSTD=9         initramfs zstd level; REUSE=1 reuses the last build; TIMEOUT=240 (s per step)
#   KEEP=1         keep the lab up afterwards (then: bash scripts/lab_netboot.sh down PREFIX)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
lab=scripts/lab_netboot.sh
prefix="nb$$-"
subnet=10.77.0
master="http://$subnet.1:8080"
out="$repo/.cache/netboot-lab"
timeout=${TIMEOUT:-240}
mac=52:54:00:77:00:01

for tool in qemu-system-x86_64 dnsmasq zstd cpio busybox bc; do
  command -v "$tool" >/dev/null || { echo "test_netboot: $tool missing: bash scripts/install_packages.sh" >&2; exit 1; }
done

if [[ ${REUSE:-} != 1 || ! -f $out/initrd ]]; then
  eval "$(bash scripts/fetch_kernel.sh | grep -E '^(KERNEL|MODULES)=')"
  echo "== build (kernel $KERNEL)"
  deno run -A netboot/build_cli.ts --master "$master" --out "$out" --kernel "$KERNEL" \
    --modules "$MODULES" --target /dev/vda --after poweroff --compile-timeout 20 \
    --zstd "${ZSTD:-9}" --kernel-args "console=tty0 console=ttyS0,115200 loglevel=4 panic=10"
fi

cleanup() {
  if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: lab left up: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
}
trap cleanup EXIT
bash $lab up "$prefix" "$subnet"
state=$(bash $lab state "$prefix")
if [[ ${DHCP:-full} == proxy ]]; then
  bash $lab landhcp "$prefix"
  deno run -A scripts/netboot_lab.ts dnsmasq-proxy-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
else
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
fi
bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- --conf-file="$state/dnsmasq.conf" \
  --pid-file="$state/dnsmasq.pid2" --dhcp-leasefile="$state/leases"
local_macs=""
[[ ${LOCAL:-} == 1 ]] && local_macs=$mac
bash $lab run "$prefix" http deno run -A scripts/netboot_lab.ts serve "$out" "$master" \
  "$(printf '%064d' 0 | tr 0 a)" /dev/vda poweroff "$local_macs"
bash $lab wait "$prefix" http "serving" 30

truncate -s 64M "$state/vm1.img"
[[ ${LOCAL:-} == 1 ]] && deno run -A scripts/netboot_lab.ts boot-sector "$state/vm1.img"
qemu_args=()
case ${FIRMWARE:-bios} in
bios) ;;
uefi) qemu_args=(-bios /usr/share/ovmf/OVMF.fd) ;;
uefi-pxe) qemu_args=(-bios /usr/share/ovmf/OVMF.fd); export VM_NIC_OPTS="romfile=" ;;
*) echo "test_netboot: unknown FIRMWARE=$FIRMWARE" >&2; exit 2 ;;
esac
echo "== VM: firmware ${FIRMWARE:-bios}, DHCP ${DHCP:-full}${LOCAL:+, local boot}"
t0=$(date +%s.%N)
bash $lab vm "$prefix" vm1 "$mac" "$state/vm1.img" "${qemu_args[@]}"
elapsed() { echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f'; }
step() { bash $lab wait "$prefix" "$1" "$2" "$timeout"; printf '%-26s %6s s\n' "$3:" "$(elapsed)"; }
step http "GET /boot/first-stage.ipxe" "first stage requested"
step http "boot request mac=$mac" "per-machine script"
if [[ ${LOCAL:-} == 1 ]]; then
  step vm1 "CASCADE-LOCAL-DISK-BOOTED" "local disk booted"
  exit 0
fi
step http "GET /boot/initrd" "initrd requested"
step vm1 "Cascade netboot:" "/init running"
step vm1 "network up" "network up"
step vm1 "running: cascade client" "cascade client started"
# The client's first word: a failure banner, or its structured log (e.g. waiting for the master).
step vm1 "CASCADE CLIENT FAILED|DISK IMAGED|client\\[[^]]*\\]\\." "cascade client reported"
echo "initrd size: $(stat -c %s "$out/initrd") bytes"
echo "== VM console (tail)"
tr -d '\r' <"$state/vm1.log" | grep -av '^$' | tail -12
