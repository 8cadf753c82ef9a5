#!/usr/bin/env bash
# End-to-end netboot proof: build the initramfs, bring up an emulated LAN (netns + bridge +
# dnsmasq), serve /boot with createBootApp, PXE-boot ONE QEMU VM (TCG, BIOS, virtio-net, blank
# virtio disk) through iPXE into our /init and the Cascade binary, and time each step.
# Until the master serves a run here, the client only waits for one: the test passes when the
# VM's console shows the client ran and reported (the chain up to Cascade works).
#
# Env: KEEP=1 keeps the lab up (then: scripts/lab_netboot.sh down PREFIX), TIMEOUT (s, 240),
# ZSTD (initramfs zstd level, 9).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
lab=scripts/lab_netboot.sh
prefix="nb$$-"
subnet=10.77.0
master="http://$subnet.1:8080"
out="$repo/.cache/netboot-lab"
timeout=${TIMEOUT:-240}

for tool in qemu-system-x86_64 dnsmasq zstd cpio busybox; do
  command -v "$tool" >/dev/null || { echo "test_netboot: $tool missing: bash scripts/install_packages.sh" >&2; exit 1; }
done

eval "$(bash scripts/fetch_kernel.sh | grep -E '^(KERNEL|MODULES)=')"
echo "== build (kernel $KERNEL)"
deno run -A netboot/build_cli.ts --master "$master" --out "$out" --kernel "$KERNEL" \
  --modules "$MODULES" --target /dev/vda --after poweroff --compile-timeout 20 \
  --zstd "${ZSTD:-9}" --kernel-args "console=tty0 console=ttyS0,115200 loglevel=4 panic=10"

cleanup() {
  if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: lab left up: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
}
trap cleanup EXIT
bash $lab up "$prefix" "$subnet"
state=$(bash $lab state "$prefix")
deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --conf-file="$state/dnsmasq.conf" \
  --pid-file="$state/dnsmasq.pid2" --dhcp-leasefile="$state/leases"
bash $lab run "$prefix" http deno run -A scripts/netboot_lab.ts serve "$out" "$master" \
  "$(printf '%064d' 0 | tr 0 a)" /dev/vda poweroff
bash $lab wait "$prefix" http "serving" 30

truncate -s 64M "$state/vm1.img"
t0=$(date +%s.%N)
bash $lab vm "$prefix" vm1 52:54:00:77:00:01 "$state/vm1.img"
elapsed() { echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f'; }
bash $lab wait "$prefix" vm1 "iPXE" "$timeout"
echo "iPXE started:            $(elapsed) s"
bash $lab wait "$prefix" http "GET /boot/initrd" "$timeout"
echo "initrd requested:        $(elapsed) s"
bash $lab wait "$prefix" vm1 "Cascade netboot:" "$timeout"
echo "/init running:           $(elapsed) s"
bash $lab wait "$prefix" vm1 "network up" "$timeout"
echo "network up:              $(elapsed) s"
bash $lab wait "$prefix" vm1 "running: cascade client" "$timeout"
echo "cascade client started:  $(elapsed) s"
# The client's first word: a failure banner, or its structured log (e.g. waiting for the master).
bash $lab wait "$prefix" vm1 "CASCADE CLIENT FAILED|DISK IMAGED|client\\[[^]]*\\]\\." "$timeout"
echo "cascade client reported: $(elapsed) s"
echo "initrd size: $(stat -c %s "$out/initrd") bytes"
echo "== VM console (tail)"
tr -d '\r' <"$state/vm1.log" | grep -v '^$' | tail -25
