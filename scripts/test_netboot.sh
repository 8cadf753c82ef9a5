#!/usr/bin/env bash
# End-to-end netboot: build the kernel+initramfs once, then per scenario bring up an emulated
# LAN (netns + bridge + dnsmasq), serve /boot with createBootApp, and PXE-boot ONE QEMU VM (TCG,
# 512 MB, virtio-net, blank virtio disk) through iPXE into our /init and the Cascade client,
# timing each step. Until the master serves a run here, the client only waits for one: an
# "image" scenario passes when the VM's console shows the client ran and reported.
#
# Scenarios (env SCENARIOS, default "archs lab proxy local uefi-pxe uefi-http+uefi-http-proxy
# pxelinux pxelinux-cut secureboot sb-bad-grub+sb-bad-kernel room master-down"; scenarios joined
# by + run side by side, each in its own lab):
#   lab       a lab: three VMs (two BIOS, one UEFI/OVMF) with blank disks PXE-boot together from
#             `cascade master --netboot` (relay mode) and a fake-server, image their disks
#             serving each other, and power off once the master ends the run; the host compares
#             every disk with the golden image byte for byte
#   image     the same for one VM: `cascade master --netboot` and a fake-server on the LAN; the VM
#             netboots, receives a 16 MiB random image onto its disk, verifies it, powers off;
#             the host compares the disk file with the image
#   bios      SeaBIOS + QEMU's iPXE NIC ROM, dnsmasq as the LAN's DHCP server
#   proxy     the same beside a separate plain DHCP server, our dnsmasq in proxy-DHCP mode
#   local     the master answers "boot the local disk": a boot sector on the disk must run
#   uefi      OVMF + QEMU's iPXE EFI ROM
#   uefi-pxe  OVMF's own PXE (no iPXE ROM) in proxy mode: snponly.efi over TFTP, then iPXE
#   uefi-http OVMF's UEFI HTTP Boot (its PXE entries off, no iPXE ROM), dnsmasq as the DHCP
#             server: the firmware fetches snponly.efi from the master's /boot over HTTP, then
#             iPXE as above; dnsmasq must have sent nothing over TFTP
#   uefi-http-proxy  the same beside the lab's own plain DHCP server (no boot options): the lab's
#             server gives the address, our dnsmasq in proxy mode the HTTP Boot URL (a proxy
#             offer: no address, vendor class HTTPClient); its log must show that answer
#   pxelinux  a lab that boots PXELINUX: SeaBIOS + the NIC's PXE ROM load lpxelinux.0 over TFTP
#             (dnsmasq option 210 = the master's /boot/), which fetches ldlinux.c32, the
#             per-MAC pxelinux.cfg/01-<mac>, kernel and initrd from the master over HTTP
#   pxelinux-cut  the same, the initrd's connection reset 3 s into its download: the short
#             initrd fails in the kernel, the PC reboots (panic=10), fetches it again, runs the client
#   secureboot  OVMF with Secure Boot on and the Microsoft keys enrolled: shim -> Debian's
#             signed GRUB -> Debian's signed kernel (GRUB's configuration and the kernel over
#             TFTP from the master); images an EFI disk (shim + GRUB on its ESP), powers off; the
#             same VM (same variable store) boots again, the master (same history) answers
#             "local" and GRUB chains the disk's shim: the disk's GRUB runs with lockdown=y
#   archs     no VM: a DHCP client sends each client architecture (BIOS, x64 UEFI 7/9, HTTP
#             Boot 16, IA32 UEFI 6, ARM64 11): dnsmasq's log shows the boot file each gets, or
#             the cascade-refuses-* tag and no boot file; then in proxy mode beside the lab's DHCP
#             server, HTTP Boot 16 (the URL), 15 and 19 (refused)
#   sb-bad-grub   the same firmware, a GRUB with one byte changed: shim refuses it
#   sb-bad-kernel the same firmware, a kernel with one byte changed: GRUB (through shim) refuses it
#   room      real-lab boot, VMs side by side (room_scenario below): enrolment, a target rule
#             passing over a USB stick, GPT moved and a hostname written, the disk's own EFI
#             loader booted with network first, a failing disk stopped, the master off
#   master-down  no master process at all (dnsmasq up), network boot first: a UEFI PC (OVMF,
#             disk second) and a BIOS PC each boot their disk; prints the seconds to each disk
# Env: ZSTD (initramfs level, 9), REUSE=1 (reuse the last build), TIMEOUT (s per step, 240),
#      KEEP=1 (leave each lab up; then bash scripts/lab_netboot.sh down PREFIX).
# Last line: "netboot: N passed, M failed".
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
lab=scripts/lab_netboot.sh
subnet=10.77.0
master="http://$subnet.1:8080"
out="$repo/.cache/netboot-lab"
timeout=${TIMEOUT:-240}
mac=52:54:00:77:00:01
image_id=$(printf 'a%.0s' {1..64})

for tool in qemu-system-x86_64 dnsmasq zstd cpio busybox; do
  if ! command -v "$tool" >/dev/null; then
    echo "test_netboot: $tool missing: bash scripts/install_packages.sh" >&2
    echo "netboot: 0 passed, 1 failed"
    exit 1
  fi
done

if [[ ${REUSE:-} != 1 || ! -f $out/initrd ]]; then
  if ! kv="$(bash scripts/fetch_kernel.sh)"; then
    echo "netboot: 0 passed, 1 failed"
    exit 1
  fi
  eval "$(grep -E '^(KERNEL|MODULES)=' <<<"$kv")"
  if ! sb="$(bash scripts/fetch_secureboot.sh)"; then
    echo "netboot: 0 passed, 1 failed"
    exit 1
  fi
  eval "$(grep -E '^SECURE_BOOT=' <<<"$sb")"
  echo "== build (kernel $KERNEL)"
  if ! deno run -A netboot/build_cli.ts --master "$master" --out "$out" --kernel "$KERNEL" \
    --modules "$MODULES" --target /dev/vda --after serve --compile-timeout 20 \
    --secure-boot "$SECURE_BOOT" \
    --zstd "${ZSTD:-9}" --kernel-args "console=tty0 console=ttyS0,115200 loglevel=4 panic=10"; then
    echo "netboot: 0 passed, 1 failed"
    exit 1
  fi
fi

now_ds() { echo $(($(date +%s%N) / 100000000)); } # tenths of a second

# Three VMs PXE-boot together and image each other: the issue's end-to-end proof.
lab_scenario() {
  local prefix="nb$$lab-" vms=(vm1 vm2 vm3) state t0
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  state=$(bash $lab state "$prefix")
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  # Random data: a mostly-zero disk would compare equal even when a copy was cut short. Half of
  # it is base64 text, so those chunks are stored and sent zstd-compressed and the initramfs's
  # Deno decompresses them (the other half, stored raw, is sent as it is).
  # (base64 ends on SIGPIPE when head has its 8 MiB: not a failure.)
  { head -c 8M /dev/urandom; base64 -w 76 /dev/urandom | head -c 8M || true; } >"$state/golden.img"
  deno run -A cascade.ts slice "$state/golden.img" --out "$state/slices" --quiet >/dev/null
  zstd_chunks=$(grep -c '"zstd":' "$state/slices/manifest.json" || true)
  [ "$zstd_chunks" -ge 8 ] || { echo "  only $zstd_chunks chunks stored zstd"; return 1; }
  bash $lab run "$prefix" http deno run -A cascade.ts master --slices "$state/slices" \
    --host "$subnet.1" --port 8080 --netboot "$out" --enrol all --expect 3 --mode relay --linger 5 \
    --history "$state/history.sqlite" --status-file "$state/status.json" >/dev/null
  bash $lab wait "$prefix" http "listening|8080" 60
  bash $lab run "$prefix" fake deno run -A cascade.ts fake-server --slices "$state/slices" \
    --master "$master" --listen "$subnet.1" >/dev/null
  echo "== lab: 3 VMs (vm1, vm2 BIOS; vm3 UEFI), relay mode, 16 MiB random image"
  t0=$(now_ds)
  local i
  for i in 1 2 3; do
    truncate -s 64M "$state/vm$i.img"
    local fw=()
    [[ $i == 3 ]] && fw=(-bios /usr/share/ovmf/OVMF.fd)
    bash $lab vm "$prefix" "vm$i" "52:54:00:77:01:0$i" "$state/vm$i.img" "${fw[@]}" >/dev/null
  done
  lap() { local t=$(($(now_ds) - t0)); printf '  %-34s %4d.%d s\n' "$1:" $((t / 10)) $((t % 10)); }
  # A VM that fails: the master's and the fake server's side too (is each alive, what it logged
  # last), so a failure says where it was (one run saw vm1 refused by the master for 200 s).
  others() {
    local p
    for p in http fake; do
      if kill -0 "$(cat "$state/$p.pid")" 2>/dev/null; then echo "  $p: running"; else echo "  $p: NOT running"; fi
      tail -n 8 "$state/$p.log" | cut -c1-300 | sed "s/^/  $p: /"
    done
  }
  for v in "${vms[@]}"; do
    if ! bash $lab wait "$prefix" "$v" "running: cascade client" "$timeout"; then
      echo "  $v never started the client; console (tail):"
      tr -d '\r' <"$state/$v.log" | grep -av '^$' | tail -15
      others
      return 1
    fi
    lap "$v: cascade client started"
  done
  for v in "${vms[@]}"; do
    if ! bash $lab wait "$prefix" "$v" "DISK IMAGED AND VERIFIED" "$timeout"; then
      echo "  $v did not image its disk; console (tail):"
      tr -d '\r' <"$state/$v.log" | grep -av '^$' | tail -15
      others
      return 1
    fi
    lap "$v: disk imaged and verified"
  done
  # The master ends the run once all three verified; every VM then powers off.
  for v in "${vms[@]}"; do
    local pid
    pid=$(cat "$state/$v.pid")
    for _ in $(seq "$timeout"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then echo "  $v did not power off"; return 1; fi
  done
  lap "all VMs powered off"
  for v in "${vms[@]}"; do
    cmp -n 16777216 "$state/golden.img" "$state/$v.img" || { echo "  $v: disk differs"; return 1; }
  done
  echo "  every VM's disk holds the image byte for byte (16 MiB, random; $zstd_chunks chunks sent zstd)"
  # Who served whom, from the master's final status: the VMs must have served each other.
  deno eval --quiet '
    const s = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
    const pcs = s.peers.filter((p) => p.role === "client");
    for (const p of pcs) console.log(`  ${p.id} (${p.mac}) served by ${p.servedBy.join(" > ")}`);
    const byVm = pcs.filter((p) => p.servedBy.some((id) => pcs.some((q) => q.id === id)));
    if (pcs.length !== 3 || !pcs.every((p) => p.verified) || byVm.length === 0) {
      console.log("  expected 3 verified PCs, at least one served by another PC");
      Deno.exit(1);
    }' "$state/status.json"
}

# OVMF with Secure Boot on and the usual (Microsoft) keys enrolled; each VM its own copy of
# the variable store (VARS), kept for its second boot.
sb_qemu_args() {
  echo -machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
    -drive if=pflash,format=raw,unit=0,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd,readonly=on \
    -drive "if=pflash,format=raw,unit=1,file=$1"
}

# A disk with an EFI system partition (label EFI) holding Debian's shim as the removable-media
# loader and Debian's signed GRUB, whose configuration prints a marker and GRUB's lockdown
# state; random bytes everywhere else, so a copy cut short cannot compare equal.
sb_disk_image() {
  local img=$1 esp=$1.esp sbdir
  sbdir=$(sed -n 's/.*"path": "\(.*\)\/usr\/lib\/shim\/shimx64.efi.signed".*/\1/p' "$out/build.json")
  head -c 24M /dev/urandom >"$img"
  printf 'label: gpt\nstart=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=EFI\n' |
    sfdisk -q "$img"
  truncate -s 16M "$esp"
  mkfs.vfat -F 16 -n EFI "$esp" >/dev/null
  mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/debian
  mcopy -i "$esp" "$sbdir/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$esp" "$sbdir/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/BOOT/grubx64.efi
  printf 'echo "CASCADE-LOCAL-DISK-BOOTED lockdown=${lockdown}"\nsleep 600\n' >"$esp.cfg"
  mcopy -i "$esp" "$esp.cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$esp" "$esp.cfg" ::/EFI/debian/grub.cfg
  dd if="$esp" of="$img" bs=1M seek=1 conv=notrunc status=none
  rm -f "$esp" "$esp.cfg"
}

# Secure Boot end to end: image the disk through the signed chain, then boot that disk.
secureboot_scenario() {
  # Not local: the EXIT trap runs after this function returned and must see it.
  prefix="nb$$sb-"
  local state t0 sbmac=52:54:00:77:02:01
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  state=$(bash $lab state "$prefix")
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" secure-boot >"$state/dnsmasq.conf"
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  sb_disk_image "$state/golden.img"
  deno run -A cascade.ts slice "$state/golden.img" --raw --out "$state/slices" --quiet >/dev/null
  local run_master=(deno run -A cascade.ts master --slices "$state/slices" --host "$subnet.1"
    --port 8080 --netboot "$out" --enrol all --expect 1 --history "$state/history.sqlite")
  bash $lab run "$prefix" http "${run_master[@]}" >/dev/null
  bash $lab wait "$prefix" http "listening|8080" 60
  bash $lab run "$prefix" fake deno run -A cascade.ts fake-server --slices "$state/slices" \
    --master "$master" --listen "$subnet.1" >/dev/null
  # The disk as big as the image: on a bigger disk the client moves the GPT's backup to the end
  # (and so rewrites the primary header), and the disk would differ from the image there.
  truncate -s 24M "$state/vm1.img"
  cp /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$state/vm1.vars"
  echo "== secureboot: OVMF Secure Boot (MS keys), shim -> GRUB -> kernel, then the disk"
  t0=$(now_ds)
  # shellcheck disable=SC2046
  VM_NIC_OPTS="romfile=,bootindex=1" VM_DISK_BOOTINDEX=2 bash $lab vm "$prefix" vm1 "$sbmac" "$state/vm1.img" \
    $(sb_qemu_args "$state/vm1.vars") >/dev/null
  sb_step() {
    if ! bash $lab wait "$prefix" "$1" "$2" "$timeout"; then
      echo "== secureboot: $1 log (tail)"
      tr -d '\r' <"$state/$1.log" | sed 's/\x1b\[[0-9;=]*[a-zA-Z]//g' | grep -av '^$' | tail -15
      return 1
    fi
    local t=$(($(now_ds) - t0))
    printf '  %-34s %4d.%d s\n' "$3:" $((t / 10)) $((t % 10))
  }
  sb_step vm1 "Secure Boot is on" "shim and GRUB verified (lockdown)" || return 1
  sb_step http "tftp_sent.*boot/grub/$sbmac" "GRUB config from the master (TFTP)" || return 1
  sb_step http "tftp_sent.*boot/initrd" "kernel + initrd over TFTP" || return 1
  sb_step vm1 "Cascade netboot:" "/init running (signed kernel)" || return 1
  sb_step vm1 "DISK IMAGED AND VERIFIED" "disk imaged and verified" || return 1
  local pid
  pid=$(cat "$state/vm1.pid")
  for _ in $(seq "$timeout"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && { echo "  the VM did not power off"; return 1; }
  cmp -n $((24 * 1024 * 1024)) "$state/golden.img" "$state/vm1.img" || { echo "  disk differs"; return 1; }
  echo "  the disk holds the image byte for byte (24 MiB: GPT, ESP with shim + GRUB, random)"
  # The run ended with the one PC; a new master, same history: this PC is imaged.
  pid=$(cat "$state/http.pid")
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  bash $lab run "$prefix" http2 "${run_master[@]}" >/dev/null
  bash $lab wait "$prefix" http2 "listening|8080" 60
  t0=$(now_ds)
  # shellcheck disable=SC2046
  VM_NIC_OPTS="romfile=,bootindex=1" VM_DISK_BOOTINDEX=2 bash $lab vm "$prefix" vm1b "$sbmac" "$state/vm1.img" \
    $(sb_qemu_args "$state/vm1.vars") >/dev/null
  sb_step vm1b "booting its local disk" "second boot: master says local" || return 1
  sb_step vm1b "CASCADE-LOCAL-DISK-BOOTED lockdown=y" "disk's shim + GRUB, Secure Boot on" || return 1
}

# DHCP answers per client architecture, no VM: busybox udhcpc in a namespace cabled to the
# lab's bridge sends option 93 and the firmware's vendor class; dnsmasq's log must show the
# boot file (or URL) each one gets, and the refusal tag (and no boot file) for the rest.
archs_scenario() {
  prefix="nb$$archs-" # not local: the EXIT trap runs after this function returned
  local state cns
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  state=$(bash $lab state "$prefix")
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" secure-boot >"$state/dnsmasq.conf"
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  bash $lab wait "$prefix" dnsmasq "DHCP, IP range" 30
  # The client namespace: "down" removes PREFIXcli too.
  cns="${prefix}cli"
  ip netns add "$cns"
  ip -n "${prefix}lan" link add veth-cli type veth peer name eth0 netns "$cns"
  ip -n "${prefix}lan" link set veth-cli master br0
  ip -n "${prefix}lan" link set veth-cli up
  ip -n "$cns" link set eth0 up
  sleep 1 # the new bridge port and link come up
  echo "== archs: dnsmasq's answer per client architecture (full DHCP, Secure Boot chain)"
  local code class want from part
  # LOG TRIES: each line "CODE CLASS WANT" on stdin; udhcpc sends TRIES discovers.
  ask_archs() {
    while read -r code class want; do
      from=$(stat -c %s "$1")
      ip netns exec "$cns" busybox udhcpc -i eth0 -n -q -t "$2" -T 1 -s /bin/true \
        -V "$class:Arch:$(printf %05d "$code"):UNDI:003016" -x "0x5d:$(printf %04x "$code")" \
        >/dev/null 2>&1 || true
      sleep 0.3
      part=$(tail -c +$((from + 1)) "$1" | grep -av RTR-ADVERT)
      if ! grep -qaF -- "$want" <<<"$part" ||
        { [[ $want == tags:* ]] && grep -qa "bootfile name" <<<"$part"; }; then
        echo "  arch $code ($class): expected \"$want\" in dnsmasq's log, got:"
        grep -aE "tags|bootfile|DHCP[A-Z]+\(|PXE" <<<"$part" | head -8 | sed 's/^/    /'
        return 1
      fi
      printf '  arch %-2s %-10s %s\n' "$code" "$class" "$want"
    done
  }
  ask_archs "$state/dnsmasq.log" 4 <<'ARCHS'
0 PXEClient bootfile name: undionly.kpxe
7 PXEClient bootfile name: shimx64.efi
9 PXEClient bootfile name: shimx64.efi
16 HTTPClient bootfile name: http://10.77.0.1:8080/boot/snponly.efi
6 PXEClient tags: cascade-refuses-32-bit-x86-uefi
11 PXEClient tags: cascade-refuses-arm64-uefi
ARCHS
  # Proxy mode beside the lab's own DHCP server: HTTP Boot gets the URL (or, for an
  # architecture without a boot file, its refusal tag and no URL) in a proxy answer.
  kill "$(cat "$state/dnsmasq.pid")"
  bash $lab landhcp "$prefix" >/dev/null
  deno run -A scripts/netboot_lab.ts dnsmasq-proxy-conf "$subnet" "$out/tftp" "$master" >"$state/proxy.conf"
  bash $lab run "$prefix" proxy dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/proxy.conf" --pid-file="$state/proxy.pid2" >/dev/null
  bash $lab wait "$prefix" proxy "DHCP, proxy on subnet" 30
  echo "== archs: proxy mode beside the lab's DHCP server (HTTP Boot)"
  ask_archs "$state/proxy.log" 1 <<'ARCHS'
16 HTTPClient bootfile name: http://10.77.0.1:8080/boot/snponly.efi
15 HTTPClient tags: cascade-refuses-32-bit-x86-uefi-http-boot
19 HTTPClient tags: cascade-refuses-arm64-uefi-http-boot
ARCHS
  grep -aq "PXE(br0) .* proxy" "$state/proxy.log" || { echo "  no proxy answer in the log"; return 1; }
}

# A tampered GRUB (TFTP) or kernel (from the master): Secure Boot must refuse it.
sb_tamper_scenario() {
  local what=$1 state t0 tmac=52:54:00:77:03:01
  prefix="nb$$sb$1-" # not local: the EXIT trap runs after this function returned
  prefix=${prefix:0:20}
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  state=$(bash $lab state "$prefix")
  # One byte changed, well inside the signed code (past the headers).
  flip() { printf '\xff' | dd of="$1" bs=1 seek=$((0x2000)) conv=notrunc status=none; }
  cp -r "$out/tftp" "$state/tftp"
  mkdir "$state/build"
  cp "$out/build.json" "$out/vmlinuz" "$state/build/" && ln -s "$out/initrd" "$state/build/initrd"
  local expect
  case $what in
  grub) flip "$state/tftp/grubx64.efi"; expect="Security Violation|Verification failed" ;;
  kernel) flip "$state/build/vmlinuz"; expect="bad shim signature" ;;
  esac
  cmp -s "$out/tftp/grubx64.efi" "$state/tftp/grubx64.efi" && [[ $what == grub ]] &&
    { echo "  the GRUB copy did not change"; return 1; }
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$state/tftp" "$master" secure-boot >"$state/dnsmasq.conf"
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  bash $lab run "$prefix" http deno run -A scripts/netboot_lab.ts serve "$state/build" "$master" \
    "$image_id" /dev/vda poweroff "" >/dev/null
  bash $lab wait "$prefix" http "serving" 60
  truncate -s 64M "$state/vm1.img"
  cp /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$state/vm1.vars"
  echo "== sb-bad-$what: Secure Boot on, a $what with one byte changed"
  t0=$(now_ds)
  # shellcheck disable=SC2046
  VM_NIC_OPTS="romfile=,bootindex=1" bash $lab vm "$prefix" vm1 "$tmac" "$state/vm1.img" \
    $(sb_qemu_args "$state/vm1.vars") >/dev/null
  if ! bash $lab wait "$prefix" vm1 "$expect" "$timeout"; then
    echo "  no refusal on the console (tail):"
    tr -d '\r' <"$state/vm1.log" | sed 's/\x1b\[[0-9;=]*[a-zA-Z]//g' | grep -av '^$' | tail -15
    return 1
  fi
  local t=$(($(now_ds) - t0))
  printf '  %-34s %4d.%d s\n' "refused:" $((t / 10)) $((t % 10))
  tr -d '\r' <"$state/vm1.log" | sed 's/\x1b\[[0-9;=]*[a-zA-Z]//g' | grep -aE "$expect" | head -3 |
    sed 's/^/  console: /'
  if grep -aq "Cascade netboot:" "$state/vm1.log"; then echo "  but /init ran"; return 1; fi
}

# Real-lab boot (issue 14), VMs side by side on one LAN with `cascade master --groups`:
#   vm-a  UEFI (OVMF's own PXE), enrolled, two disks: a 40 MiB USB stick (sda, skipped by the
#         target rule "auto") and a 64 MiB virtio disk (imaged: bigger than the 24 MiB GPT image,
#         so its GPT backup moves to the end and the finishing step writes its hostname); after
#         "reboot" it boots again with network first: the master answers "local" and iPXE chains
#         the disk's own EFI loader (a standalone GRUB printing CASCADE-UEFI-DISK-BOOTED)
#   vm-b  BIOS, not enrolled: the master answers "local", its own boot sector runs, disk
#         unchanged; once more with the master stopped: it boots its disk
#   vm-c  BIOS, enrolled, its disk a file on a small tmpfs (writes fail part-way: ENOSPC seen
#         by the guest as I/O errors): the client retries with backoff, then DISK FAILED; the
#         master records one "disk" failure per try and blames no server
room_scenario() {
  local prefix="nb$$room-" state t0
  ROOM_FULL="" ROOM_STATE="" # globals: the EXIT trap runs after this function's locals are gone
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix; umount $ROOM_FULL"; else
      # QEMU first: it holds the tmpfs file open. down cannot remove the state folder while the
      # tmpfs is mounted in it, and under set -e that failure would fail the scenario: go on.
      bash $lab down "$prefix" >/dev/null 2>&1 || true
      if [[ -n $ROOM_FULL ]]; then
        for _ in 1 2 3 4 5 6 7 8 9 10; do umount "$ROOM_FULL" 2>/dev/null && break; sleep 0.5; done
        rm -rf "$ROOM_STATE" || true
      fi
    fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  state=$(bash $lab state "$prefix")
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  bash scripts/netboot_disks.sh golden "$state/golden.img"
  deno run -A cascade.ts slice "$state/golden.img" --out "$state/slices" --raw --quiet >/dev/null
  cp netboot/finish/hostname.sh "$state/hostname.sh"
  cat >"$state/groups.conf" <<GROUPS
[room]
mac = 52:54:00:77:0a:01 pc-a
target = auto
after = reboot
finish = hostname.sh
[bad-disk]
mac = 52:54:00:77:0c:01
target = /dev/vda
after = poweroff
GROUPS
  bash $lab run "$prefix" http deno run -A cascade.ts master --slices "$state/slices" \
    --host "$subnet.1" --port 8080 --netboot "$out" --groups "$state/groups.conf" \
    --mode classic --linger 1 --history "$state/history.sqlite" >/dev/null
  bash $lab wait "$prefix" http "listening|8080" 60
  bash $lab run "$prefix" fake deno run -A cascade.ts fake-server --slices "$state/slices" \
    --master "$master" --listen "$subnet.1" >/dev/null
  echo "== room: vm-a UEFI enrolled (USB stick + bigger disk), vm-b BIOS not enrolled, vm-c BIOS failing disk"
  t0=$(now_ds)
  lap() { local t=$(($(now_ds) - t0)); printf '  %-44s %4d.%d s\n' "$1:" $((t / 10)) $((t % 10)); }
  wait_for() { # NAME REGEX WHAT
    if ! bash $lab wait "$prefix" "$1" "$2" "$timeout"; then
      echo "  $1: no /$2/; console (tail):"
      tr -d '\r' <"$state/$1.log" | grep -av '^$' | tail -20
      return 1
    fi
    lap "$3"
  }
  # vm-a: OVMF's own PXE (no iPXE ROM), network first by bootindex.
  truncate -s 64M "$state/a.img"
  head -c 40M /dev/urandom >"$state/a-usb.img"
  cp "$state/a-usb.img" "$state/a-usb.orig"
  local uefi=(-bios /usr/share/ovmf/OVMF.fd -device qemu-xhci
    -drive "if=none,id=usb,file=$state/a-usb.img,format=raw" -device usb-storage,drive=usb)
  VM_NIC_OPTS="romfile=,bootindex=1" bash $lab vm "$prefix" vm-a 52:54:00:77:0a:01 "$state/a.img" "${uefi[@]}" >/dev/null
  # vm-b: a disk with a boot sector the master must not touch.
  truncate -s 64M "$state/b.img"
  deno run -A scripts/netboot_lab.ts boot-sector "$state/b.img"
  cp "$state/b.img" "$state/b.orig"
  bash $lab vm "$prefix" vm-b 52:54:00:77:0b:01 "$state/b.img" >/dev/null
  # vm-c: its disk on a file system that fills up once 2 MiB are written (the client writes no
  # zero chunk on a disk that reads zeros there: the sparse file's holes).
  local full="$state/full"
  mkdir -p "$full"
  mount -t tmpfs -o "size=2048k" tmpfs "$full"
  ROOM_FULL=$full ROOM_STATE=$state
  truncate -s 64M "$full/c.img"
  VM_DRIVE_OPTS="werror=report,rerror=report" bash $lab vm "$prefix" vm-c 52:54:00:77:0c:01 "$full/c.img" >/dev/null

  wait_for vm-b "CASCADE-LOCAL-DISK-BOOTED" "vm-b (not enrolled) booted its own disk"
  cmp "$state/b.orig" "$state/b.img" || { echo "  vm-b: disk changed"; return 1; }
  wait_for vm-a 'Chose /dev/vda' "vm-a chose its disk"
  tr -d '\r' <"$state/vm-a.log" | grep -ao 'Chose /dev/vda[^"]*"[^"]*"[^;]*;.*' | head -1 | cut -c1-200 | sed 's/^/  console: /'
  grep -aq 'passed over /dev/sda: USB' "$state/vm-a.log" || {
    echo "  vm-a: USB stick not named as passed over"
    tr -d '\r' <"$state/vm-a.log" | grep -a -e 'drivers loaded' -e 'target' | tail -3
    return 1
  }
  wait_for vm-a "DISK IMAGED AND VERIFIED" "vm-a imaged, verified, finished"
  grep -aq 'hostname "pc-a" written' "$state/vm-a.log" || { echo "  vm-a: no hostname step"; tr -d '\r' <"$state/vm-a.log" | grep -a Cascade | tail; return 1; }
  local pid
  pid=$(cat "$state/vm-a.pid")
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && { echo "  vm-a did not reboot"; return 1; }
  lap "vm-a rebooted (QEMU ends on reboot)"
  sgdisk -v "$state/a.img" | grep -q "No problems found" || { echo "  vm-a: GPT not clean"; sgdisk -v "$state/a.img"; return 1; }
  [[ $(bash scripts/netboot_disks.sh hostname "$state/a.img") == pc-a ]] || { echo "  vm-a: hostname not in place"; return 1; }
  cmp "$state/a-usb.orig" "$state/a-usb.img" || { echo "  vm-a: USB stick changed"; return 1; }
  # The image's bytes are on the disk but for the primary GPT header (the moved backup) and the
  # root partition (the hostname): the protective MBR, the entries and the ESP byte for byte.
  cmp -n 512 "$state/golden.img" "$state/a.img" &&
    cmp -i 1024:1024 -n $((4 * 1024 * 1024 + 1024 * 1024 - 1024)) "$state/golden.img" "$state/a.img" ||
    { echo "  vm-a: image bytes differ"; return 1; }
  echo "  vm-a: sgdisk -v clean, /etc/hostname = pc-a, USB stick unchanged"

  # Boot again, network first: the master says "local", iPXE chains the ESP's GRUB.
  mv "$state/vm-a.log" "$state/vm-a.1.log"
  VM_NIC_OPTS="romfile=,bootindex=1" bash $lab vm "$prefix" vm-a2 52:54:00:77:0a:01 "$state/a.img" "${uefi[@]}" >/dev/null
  wait_for vm-a2 "CASCADE-UEFI-DISK-BOOTED" "vm-a booted its disk's EFI loader"
  grep -aq "booting the disk's own EFI loader" "$state/vm-a2.log" || { echo "  vm-a: not through iPXE's local boot"; return 1; }

  wait_for vm-c "DISK FAILED" "vm-c stopped: disk failed"
  tr -d '\r' <"$state/vm-c.log" | grep -a "DISK FAILED:" | head -1 | sed 's/^/  console: /'
  local status
  status=$(ip netns exec "${prefix}lan" curl -sf "$master/api/v1/status")
  deno eval --quiet '
    const s = JSON.parse(Deno.args[0]);
    const c = s.peers.find((p) => p.mac === "52:54:00:77:0c:01");
    const disk = (c?.failures ?? []).filter((f) => f.reason === "disk").length;
    const blamed = s.peers.filter((p) => p.role !== "client" && p.failures.length).length;
    const b = s.unenrolled.some((u) => u.mac === "52:54:00:77:0b:01");
    console.log(`  master: vm-c ${disk} disk failures (1 + 3 retries), state ${c?.state}; servers blamed: ${blamed}; vm-b listed as not enrolled: ${b}`);
    if (disk !== 4 || c.state !== "failed" || blamed !== 0 || !b) Deno.exit(1);' "$status"

  # The master stopped: the first stage (over TFTP from dnsmasq) finds no master and boots the
  # disk (vm-b: BIOS; master-down below times it on UEFI).
  kill "$(cat "$state/http.pid")"
  kill "$(cat "$state/vm-b.pid")" # its boot sector halts: power it off
  for _ in $(seq 20); do kill -0 "$(cat "$state/vm-b.pid")" 2>/dev/null || break; sleep 0.5; done
  mv "$state/vm-b.log" "$state/vm-b.1.log"
  bash $lab vm "$prefix" vm-b2 52:54:00:77:0b:01 "$state/b.img" >/dev/null
  wait_for vm-b2 "CASCADE-LOCAL-DISK-BOOTED" "master stopped: vm-b booted its disk"
}

# The master wholly down (its process not running; dnsmasq, the LAN's DHCP and TFTP, up), network
# boot first on every PC: each boots its own disk, the UEFI one (OVMF's own PXE, the disk second
# in its boot order) without first walking its other network entries. Times each PC to its disk.
master_down_scenario() {
  local prefix="nb$$masterdown-" state t0 # the name scenario() gives: its EXIT trap reads it
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  state=$(bash $lab state "$prefix")
  deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  bash scripts/netboot_disks.sh golden "$state/a.img"
  truncate -s 64M "$state/b.img"
  deno run -A scripts/netboot_lab.ts boot-sector "$state/b.img"
  echo "== master-down: no master process; vm-a UEFI (network first, disk second), vm-b BIOS"
  t0=$(now_ds)
  VM_NIC_OPTS="romfile=,bootindex=1" VM_DISK_BOOTINDEX=2 bash $lab vm "$prefix" vm-a 52:54:00:77:0d:01 \
    "$state/a.img" -bios /usr/share/ovmf/OVMF.fd >/dev/null
  bash $lab vm "$prefix" vm-b 52:54:00:77:0d:02 "$state/b.img" >/dev/null
  local v marker
  for v in vm-b vm-a; do
    marker=CASCADE-LOCAL-DISK-BOOTED
    [[ $v == vm-a ]] && marker=CASCADE-UEFI-DISK-BOOTED
    if ! bash $lab wait "$prefix" "$v" "$marker" "$timeout"; then
      echo "  $v did not boot its disk within $timeout s; console (tail):"
      tr -d '\r' <"$state/$v.log" | grep -av '^$' | tail -15
      return 1
    fi
    local t=$(($(now_ds) - t0))
    printf '  %-44s %4d.%d s\n' "$v booted its disk:" $((t / 10)) $((t % 10))
  done
  if ! grep -aq "booting the disk's own EFI loader" "$state/vm-a.log"; then
    echo "  vm-a: not through the first stage's local boot (the firmware found the disk itself)"
    return 1
  fi
}

# One scenario in a subshell: its own lab (prefix), torn down on the way out.
scenario() (
  set -euo pipefail
  local name=$1 prefix="nb$$${1//[^a-z]/}-" dhcp=full firmware=bios local_boot=0 real=0 cut=0
  case $name in
  lab) lab_scenario; return ;;
  room) room_scenario; return ;;
  master-down) master_down_scenario; return ;;
  secureboot) secureboot_scenario; return ;;
  archs) archs_scenario; return ;;
  sb-bad-grub) sb_tamper_scenario grub; return ;;
  sb-bad-kernel) sb_tamper_scenario kernel; return ;;
  bios) ;;
  image) real=1 ;;
  proxy) dhcp=proxy ;;
  local) local_boot=1 ;;
  uefi) firmware=uefi ;;
  uefi-pxe) firmware=uefi-pxe dhcp=proxy ;;
  uefi-http) firmware=uefi-http ;;
  uefi-http-proxy) firmware=uefi-http dhcp=proxy ;;
  pxelinux) dhcp=pxelinux ;;
  pxelinux-cut) dhcp=pxelinux cut=1 ;;
  *) echo "test_netboot: unknown scenario \"$name\"" >&2; return 2 ;;
  esac
  prefix=${prefix:0:20}
  cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "KEEP=1: bash $lab down $prefix"; else bash $lab down "$prefix" >/dev/null; fi
  }
  trap cleanup EXIT
  bash $lab up "$prefix" "$subnet" >/dev/null
  local state
  state=$(bash $lab state "$prefix")
  if [[ $dhcp == pxelinux ]]; then
    deno run -A scripts/netboot_lab.ts dnsmasq-pxelinux-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
  elif [[ $dhcp == proxy ]]; then
    bash $lab landhcp "$prefix" >/dev/null
    deno run -A scripts/netboot_lab.ts dnsmasq-proxy-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
  else
    deno run -A scripts/netboot_lab.ts dnsmasq-conf "$subnet" "$out/tftp" "$master" >"$state/dnsmasq.conf"
  fi
  bash $lab run "$prefix" dnsmasq dnsmasq --keep-in-foreground --log-facility=- \
    --conf-file="$state/dnsmasq.conf" --pid-file="$state/dnsmasq.pid2" \
    --dhcp-leasefile="$state/leases" >/dev/null
  if [[ $real == 1 ]]; then
    # A random image (a mostly-zero disk would compare equal even when a copy was cut short).
    head -c 16M /dev/urandom >"$state/golden.img"
    deno run -A cascade.ts slice "$state/golden.img" --out "$state/slices" --quiet >/dev/null
    # The master serves /boot itself; its log is what the http steps below wait on.
    bash $lab run "$prefix" http deno run -A cascade.ts master --slices "$state/slices" \
      --host "$subnet.1" --port 8080 --netboot "$out" --enrol all --expect 1 --no-history >/dev/null
    bash $lab wait "$prefix" http "listening|8080" 60
    bash $lab run "$prefix" fake deno run -A cascade.ts fake-server --slices "$state/slices" \
      --master "$master" --listen "$subnet.1" >/dev/null
  else
    local local_macs=""
    [[ $local_boot == 1 ]] && local_macs=$mac
    bash $lab run "$prefix" http deno run -A scripts/netboot_lab.ts serve "$out" "$master" \
      "$image_id" /dev/vda poweroff "$local_macs" >/dev/null
    bash $lab wait "$prefix" http "serving" 60
  fi

  truncate -s 64M "$state/vm1.img"
  [[ $local_boot == 1 ]] && deno run -A scripts/netboot_lab.ts boot-sector "$state/vm1.img"
  local qemu_args=()
  case $firmware in
  uefi) qemu_args=(-bios /usr/share/ovmf/OVMF.fd) ;;
  uefi-pxe) qemu_args=(-bios /usr/share/ovmf/OVMF.fd); export VM_NIC_OPTS="romfile=" ;;
  uefi-http)
    # OVMF's PXE entries off (fw_cfg knobs): only its HTTP Boot entries are left.
    qemu_args=(-bios /usr/share/ovmf/OVMF.fd
      -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n
      -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n)
    export VM_NIC_OPTS="romfile="
    ;;
  esac
  echo "== $name: firmware $firmware, DHCP $dhcp$([[ $local_boot == 1 ]] && echo ", local boot")"
  local t0
  t0=$(now_ds)
  # PXELINUX resets the PC when a download fails (option 211's 30 s): with QEMU's -no-reboot
  # that reset would end the VM instead of retrying the boot, as a real PC does.
  local reboot=0
  [[ $dhcp == pxelinux ]] && reboot=1
  VM_REBOOT=$reboot bash $lab vm "$prefix" vm1 "$mac" "$state/vm1.img" "${qemu_args[@]}" >/dev/null
  step() {
    if ! bash $lab wait "$prefix" "$1" "$2" "$timeout"; then
      echo "== $name: VM console (tail)"
      tr -d '\r' <"$state/vm1.log" | grep -av '^$' | tail -15
      return 1
    fi
    local t=$(($(now_ds) - t0))
    printf '  %-26s %4d.%d s\n' "$3:" $((t / 10)) $((t % 10))
  }
  if [[ $real == 1 ]]; then
    step vm1 "Cascade netboot:" "/init running"
    step vm1 "running: cascade client" "cascade client started"
    step vm1 "DISK IMAGED AND VERIFIED" "disk imaged and verified"
    local pid
    pid=$(cat "$state/vm1.pid")
    for _ in $(seq "$timeout"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { echo "  the VM did not power off"; return 1; }
    printf '  %-26s %4d s\n' "VM powered off:" $((($(now_ds) - t0) / 10))
    cmp -n 16777216 "$state/golden.img" "$state/vm1.img"
    echo "  the VM's disk holds the image byte for byte (16 MiB, random)"
    return 0
  fi
  if [[ $firmware == uefi-http ]]; then
    step http "GET /boot/snponly.efi" "snponly.efi over HTTP Boot"
  fi
  if [[ $dhcp == pxelinux ]]; then
    step http "GET /boot/ldlinux.c32" "PXELINUX: ldlinux.c32 over HTTP"
    step http "GET /boot/pxelinux.cfg/01-${mac//:/-}" "PXELINUX: per-MAC config"
  else
    step dnsmasq "sent .*/first-stage.ipxe" "first stage (TFTP, dnsmasq)"
  fi
  step http "boot request mac=$mac" "per-machine script"
  if [[ $local_boot == 1 ]]; then
    step vm1 "CASCADE-LOCAL-DISK-BOOTED" "local disk booted"
    return 0
  fi
  step http "GET /boot/initrd" "initrd requested"
  if [[ $cut == 1 ]]; then
    # The initrd's TCP connection reset 3 s in (as a switch port flapping would): PXELINUX's HTTP
    # takes the short file as whole, the kernel panics on it, and the PC must boot again itself.
    sleep 3
    ip netns exec "${prefix}lan" ss -tnK dst "$subnet.130" >/dev/null
    echo "  initrd connection reset 3 s in"
    step vm1 "Initramfs unpacking failed|Boot failed" "short initrd noticed"
    for _ in $(seq "$timeout"); do
      (($(grep -c "GET /boot/initrd" "$state/http.log") >= 2)) && break
      sleep 1
    done
    (($(grep -c "GET /boot/initrd" "$state/http.log") >= 2)) || { echo "  the PC did not boot again"; return 1; }
    printf '  %-26s %4d.%d s\n' "booted again, initrd again:" $((($(now_ds) - t0) / 10)) $((($(now_ds) - t0) % 10))
  fi
  step vm1 "Cascade netboot:" "/init running"
  step vm1 "network up" "network up"
  step vm1 "running: cascade client" "cascade client started"
  # The client's first word: a failure banner, or its structured log (waiting for the master).
  step vm1 "CASCADE CLIENT FAILED|DISK IMAGED|client\\[[^]]*\\]\\." "cascade client reported"
  if [[ $firmware == uefi-http ]]; then
    # The firmware fetched iPXE over HTTP; only iPXE's 2 KB first stage comes over TFTP.
    if grep -E "dnsmasq-tftp.*(sent|error|not found)" "$state/dnsmasq.log" | grep -v "/first-stage.ipxe to"; then
      echo "  HTTP Boot used TFTP (above)"
      return 1
    fi
    echo "  HTTP Boot: snponly.efi over HTTP; over TFTP only iPXE's first stage"
  fi
  if [[ $dhcp == pxelinux ]] && grep -aq "Boot failed" "$state/vm1.log"; then
    echo "  PXELINUX: a download failed; the PC reset after option 211's 30 s and booted again"
  fi
  if [[ $firmware == uefi-http && $dhcp == proxy ]]; then
    # The address from the lab's server, the URL from our proxy (one transaction id: the
    # firmware's HTTP Boot DISCOVER, answered by both), nothing from ours but that.
    local xid
    xid=$(grep -a "vendor class: HTTPClient" "$state/dnsmasq.log" | head -1 | awk '{print $2}' || true)
    if [[ -z $xid ]] || ! grep -aq "$xid PXE(br0) $mac proxy" "$state/dnsmasq.log" ||
      ! grep -aq "$xid bootfile name: $master/boot/snponly.efi" "$state/dnsmasq.log" ||
      ! grep -aq "$xid sent size: 10 option: 60 vendor-class  48:54:54:50:43:6c:69:65:6e:74" "$state/dnsmasq.log"; then
      echo "  no proxy answer with the URL and vendor class HTTPClient in our dnsmasq's log"
      return 1
    fi
    if ! grep -aqE "$xid DHCPOFFER\\(eth0\\) $subnet\\.1[0-9][0-9] $mac" "$state/landhcp.log"; then
      echo "  the lab's DHCP server made the HTTP Boot client no offer"
      return 1
    fi
    if ! grep -aqE "$xid DHCPACK\\(eth0\\) $subnet\\.1[0-9][0-9] $mac" "$state/landhcp.log"; then
      echo "  the HTTP Boot client took no address from the lab's DHCP server"
      return 1
    fi
    grep -aE "$xid DHCPACK" "$state/landhcp.log" | head -1 | sed 's/^.*DHCPACK/  lab DHCP server: DHCPACK/' || true
    echo "  proxy answer (xid $xid): no address, vendor class HTTPClient, $master/boot/snponly.efi"
  fi
  tr -d '\r' <"$state/vm1.log" | grep -aE '^\[cascade [0-9.]+s\]' | sed 's/^/  console: /'
)

passed=0
failed=0
DEFAULT_SCENARIOS="archs lab proxy local uefi-pxe uefi-http+uefi-http-proxy pxelinux pxelinux-cut secureboot sb-bad-grub+sb-bad-kernel room master-down"
suite_t0=$(now_ds)
failed_names=()
rm -f "$out"/.scenario-*.log
for group in ${SCENARIOS:-$DEFAULT_SCENARIOS}; do
  # "a+b": side by side (short VMs that mostly wait); each prints when it is done.
  names=(${group//+/ })
  if [[ ${#names[@]} == 1 ]]; then
    # Not "if scenario ...": in an if (or && / ||) bash ignores set -e inside the scenario, so
    # a failed step would not fail it.
    scenario "$group" 2>&1 | tee "$out/.scenario-$group.log"
    if [[ ${PIPESTATUS[0]} == 0 ]]; then passed=$((passed + 1)); else
      echo "== $group: FAILED"
      failed=$((failed + 1))
      failed_names+=("$group")
    fi
    continue
  fi
  pids=()
  for s in "${names[@]}"; do
    scenario "$s" >"$out/.scenario-$s.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!names[@]}"; do
    if wait "${pids[$i]}"; then ok=1; else ok=0; fi
    cat "$out/.scenario-${names[$i]}.log"
    if [[ $ok == 1 ]]; then passed=$((passed + 1)); else
      echo "== ${names[$i]}: FAILED"
      failed=$((failed + 1))
      failed_names+=("${names[$i]}")
    fi
  done
done
# The failed ones again at the end, where a reader of CI's log looks first (each scenario's
# whole output stays in $out/.scenario-NAME.log until the next run).
for name in "${failed_names[@]}"; do
  echo "== $name FAILED: its last 25 lines"
  tail -n 25 "$out/.scenario-$name.log" | sed 's/^/  | /'
done
echo "scenarios took $((($(now_ds) - suite_t0) / 10)) s"
echo "initrd: $(stat -c %s "$out/initrd") bytes, $(sed -n 's/.*"compression": "\(.*\)".*/\1/p' "$out/build.json")"
echo "netboot: $passed passed, $failed failed"
[[ $failed == 0 ]]
