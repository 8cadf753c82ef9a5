#!/usr/bin/env bash
# An emulated lab LAN for network boot: one network namespace holding a bridge (the "switch",
# also the master's address), one tap per QEMU VM, dnsmasq for DHCP/TFTP and whatever HTTP
# server you start there. Nothing is created in the root namespace except the state folder.
#
#   lab_netboot.sh up PREFIX [SUBNET]          namespace PREFIXlan, bridge br0 at SUBNET.1/24
#   lab_netboot.sh run PREFIX NAME CMD [ARG..] run CMD in the namespace in the background,
#                                              output to STATE/NAME.log, PID recorded
#   lab_netboot.sh landhcp PREFIX             the lab's own DHCP server (plain dnsmasq, no PXE)
#                                              in namespace PREFIXdhcp at SUBNET.2, cabled to
#                                              br0: for testing the proxy-DHCP config beside it
#   lab_netboot.sh vm PREFIX NAME MAC DISK [QEMU ARGS..]
#                                              a tap on br0 and a QEMU VM (TCG, 512 MB, BIOS,
#                                              virtio-net, the disk as virtio) that PXE-boots;
#                                              serial console to STATE/NAME.log; env
#                                              VM_NIC_OPTS adds NIC options (romfile= : no iPXE),
#                                              VM_DISK_BOOTINDEX the disk's boot order place
#                                              VM_DRIVE_OPTS disk options (werror=report),
#                                              VM_REBOOT=1 a reset reboots (default: QEMU ends)
#   lab_netboot.sh wait PREFIX NAME REGEX SECS wait until STATE/NAME.log matches REGEX
#   lab_netboot.sh down PREFIX                 end recorded processes (by PID), delete the
#                                              namespaces (PREFIXlan with bridge and taps,
#                                              PREFIXdhcp, a test's PREFIXcli) and the state
#   lab_netboot.sh state PREFIX                print the state folder
#
# PREFIX must be unique per run (e.g. nb$$-). Facts behind the choices: NETBOOT-FACTS.md
# (TCG not KVM; IPv6 router adverts or iPXE waits 16 s; record PIDs from inside the netns).
set -euo pipefail

STATE_ROOT=${CASCADE_NETBOOT_STATE:-/run/cascade-netboot}

die() {
  echo "lab_netboot.sh: $*" >&2
  exit 1
}

check_prefix() {
  [[ ${1:-} =~ ^[a-z][a-z0-9-]{1,20}$ ]] ||
    die "Invalid prefix \"${1:-}\": use 2..21 lower-case letters, digits and -, starting with a letter"
}

ns_of() { echo "${1}lan"; }
state_of() { echo "$STATE_ROOT/$1"; }

cmd_up() {
  local prefix=${1:-} subnet=${2:-10.77.0}
  check_prefix "$prefix"
  [[ $subnet =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "Invalid subnet \"$subnet\": expected A.B.C"
  local ns state
  ns=$(ns_of "$prefix")
  state=$(state_of "$prefix")
  ip netns list | awk '{print $1}' | grep -qx "$ns" && die "Namespace $ns exists: run down first"
  mkdir -p "$state"
  : >"$state/pids"
  echo "$subnet" >"$state/subnet"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add br0 type bridge
  # No STP delay: a new tap forwards at once (PXE firmware does not wait 30 s).
  ip -n "$ns" link set br0 type bridge forward_delay 0 stp_state 0
  ip -n "$ns" addr add "$subnet.1/24" dev br0
  # An IPv6 address so dnsmasq can send router adverts (iPXE otherwise waits ~16 s).
  ip -n "$ns" addr add fd77::1/64 dev br0 nodad
  ip -n "$ns" link set br0 up
  echo "lab_netboot: up: namespace $ns, br0 $subnet.1/24, state $state"
}

# Run a command inside the namespace in the background; record its real PID from inside
# (`ip netns exec ... &` would give us the wrapper's).
cmd_run() {
  local prefix=${1:-} name=${2:-}
  check_prefix "$prefix"
  shift 2 || die "usage: run PREFIX NAME CMD [ARG..]"
  [[ $name =~ ^[a-z0-9_-]+$ ]] || die "Invalid name \"$name\""
  [[ $# -ge 1 ]] || die "usage: run PREFIX NAME CMD [ARG..]"
  local ns state
  ns=${LAB_NS:-$(ns_of "$prefix")}
  state=$(state_of "$prefix")
  [[ -d $state ]] || die "No lab $prefix: run up first"
  ip netns exec "$ns" setsid sh -c 'echo $$ > "$0"; exec "$@"' "$state/$name.pid" "$@" \
    >"$state/$name.log" 2>&1 </dev/null &
  for _ in $(seq 50); do [[ -s $state/$name.pid ]] && break; sleep 0.1; done
  [[ -s $state/$name.pid ]] || die "Cannot start $name: no PID recorded"
  cat "$state/$name.pid" >>"$state/pids"
  echo "lab_netboot: $name running as PID $(cat "$state/$name.pid"), log $state/$name.log"
}

cmd_landhcp() {
  local prefix=${1:-}
  check_prefix "$prefix"
  local ns dns state subnet
  ns=$(ns_of "$prefix")
  dns="${prefix}dhcp"
  state=$(state_of "$prefix")
  subnet=$(cat "$state/subnet")
  ip netns add "$dns"
  ip -n "$dns" link set lo up
  ip -n "$ns" link add veth-dhcp type veth peer name eth0 netns "$dns"
  ip -n "$ns" link set veth-dhcp master br0
  ip -n "$ns" link set veth-dhcp up
  ip -n "$dns" addr add "$subnet.2/24" dev eth0
  ip -n "$dns" link set eth0 up
  LAB_NS=$dns cmd_run "$prefix" landhcp dnsmasq --keep-in-foreground --log-facility=- --port=0 --log-dhcp \
    --interface=eth0 --bind-interfaces --dhcp-leasefile="$state/landhcp.leases" \
    --pid-file="$state/landhcp.pid2" \
    --dhcp-range="$subnet.100,$subnet.199,255.255.255.0,1h" --dhcp-option="option:router,$subnet.1"
}

cmd_vm() {
  local prefix=${1:-} name=${2:-} mac=${3:-} disk=${4:-}
  check_prefix "$prefix"
  shift 4 || die "usage: vm PREFIX NAME MAC DISK [QEMU ARGS..]"
  [[ $mac =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || die "Invalid MAC \"$mac\""
  [[ -f $disk ]] || die "No disk file \"$disk\""
  local ns tap
  ns=$(ns_of "$prefix")
  tap="tap-${name:0:11}"
  ip -n "$ns" tuntap add dev "$tap" mode tap
  ip -n "$ns" link set "$tap" master br0
  ip -n "$ns" link set "$tap" up
  # VM_DISK_BOOTINDEX: the disk gets a place in the firmware's boot order. OVMF connects only
  # the devices in that order when one is given (the NIC's bootindex): without it the disk is
  # invisible to the EFI programs that look for its ESP (GRUB's local boot).
  local disk_args=(-drive "file=$disk,format=raw,if=virtio${VM_DRIVE_OPTS:+,$VM_DRIVE_OPTS}")
  if [[ -n ${VM_DISK_BOOTINDEX:-} ]]; then
    disk_args=(-drive "file=$disk,format=raw,if=none,id=d0"
      -device "virtio-blk-pci,drive=d0,bootindex=$VM_DISK_BOOTINDEX")
  fi
  # -no-reboot: a reboot ends QEMU, so a run cannot loop; poweroff ends it too. VM_REBOOT=1
  # lets the PC reset and boot again (PXELINUX's answer to a failed download is a reset).
  local reboot_args=(-no-reboot)
  [[ ${VM_REBOOT:-0} == 1 ]] && reboot_args=()
  # vnet_hdr=off: the kernel then fills in checksums before the tap. With it, packets from
  # this namespace reach the guest with partial UDP checksums, which QEMU's virtio-net fixes
  # only for port 67: iPXE dropped every ProxyDHCP answer (port 4011). Real wires are fine.
  cmd_run "$prefix" "$name" qemu-system-x86_64 -accel tcg -m 512 -smp 1 \
    -nographic -monitor none "${reboot_args[@]}" -boot n \
    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vnet_hdr=off" \
    -device "virtio-net-pci,netdev=n0,mac=$mac${VM_NIC_OPTS:+,$VM_NIC_OPTS}" \
    "${disk_args[@]}" "$@"
}

cmd_wait() {
  local prefix=${1:-} name=${2:-} regex=${3:-} secs=${4:-60}
  check_prefix "$prefix"
  local log
  log="$(state_of "$prefix")/$name.log"
  local end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    if [[ -f $log ]] && tr -d '\r' <"$log" | grep -Eq -- "$regex"; then return 0; fi
    sleep 0.2
  done
  echo "lab_netboot: timed out after ${secs}s waiting for /$regex/ in $log" >&2
  return 1
}

cmd_down() {
  local prefix=${1:-}
  check_prefix "$prefix"
  local ns state
  ns=$(ns_of "$prefix")
  state=$(state_of "$prefix")
  if [[ -f $state/pids ]]; then
    while read -r pid; do
      [[ $pid =~ ^[0-9]+$ ]] && kill "$pid" 2>/dev/null || true
    done <"$state/pids"
    sleep 0.5
    while read -r pid; do
      [[ $pid =~ ^[0-9]+$ ]] && kill -9 "$pid" 2>/dev/null || true
    done <"$state/pids"
  fi
  for n in "$ns" "${prefix}dhcp" "${prefix}cli"; do
    if ip netns list | awk '{print $1}' | grep -qx "$n"; then ip netns del "$n"; fi
  done
  rm -rf "$state"
  echo "lab_netboot: down: $prefix"
}

case "${1:-}" in
up) shift; cmd_up "$@" ;;
run) shift; cmd_run "$@" ;;
vm) shift; cmd_vm "$@" ;;
landhcp) shift; cmd_landhcp "$@" ;;
wait) shift; cmd_wait "$@" ;;
down) shift; cmd_down "$@" ;;
state) check_prefix "${2:-}"; state_of "$2" ;;
*) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
