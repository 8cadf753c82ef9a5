// The initramfs /init (busybox sh) and the udhcpc event script, rendered from a template.
// /init is PID 1: it must never exit, never hang silently, and never leave a dead shell: every
// failure is shown on the console with its reason and retried after a delay.

import { AFTER_ACTIONS, CMDLINE_KEYS } from "./cmdline.ts";

export interface InitOptions {
  /** Modules to load when no network interface shows up from the hardware's modaliases. */
  fallbackModules: string[];
  /** Modules loaded before the hardware scan: drivers for devices that appear after it (USB). */
  earlyModules?: string[];
  /** Seconds between attempts (default 10). */
  retryDelay?: number;
  /** Client failures before a reboot fetches fresh settings from the master (default 6). */
  attemptsBeforeReboot?: number;
}

function shellWords(words: string[]): string {
  for (const w of words) {
    if (!/^[A-Za-z0-9_.\/-]+$/.test(w)) {
      throw new TypeError(`Cannot put "${w}" in /init: only A-Z a-z 0-9 _ . / - allowed`);
    }
  }
  return words.join(" ");
}

export function renderInit(o: InitOptions): string {
  const delay = o.retryDelay ?? 10;
  const attempts = o.attemptsBeforeReboot ?? 6;
  if (!Number.isInteger(delay) || delay < 1) throw new RangeError(`Bad retry delay ${delay}`);
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`Bad attempts before reboot ${attempts}`);
  }
  const k = CMDLINE_KEYS;
  return `#!/bin/sh
# Cascade netboot /init (rendered by netboot/init_script.ts; edit the template, not this file).
# Mounts the basics, loads drivers for the hardware found, gets a DHCP lease, reads cascade.*
# settings from the kernel command line and runs the Cascade client until it succeeds.
export PATH=/bin:/sbin
export HOME=/tmp DENO_DIR=/tmp/deno DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 NO_COLOR=1
RETRY_DELAY=${delay}
ATTEMPTS_BEFORE_REBOOT=${attempts}
FALLBACK_MODULES="${shellWords(o.fallbackModules)}"
EARLY_MODULES="${shellWords(o.earlyModules ?? [])}"

uptime_s() { read -r up _ < /proc/uptime 2>/dev/null; echo "\${up:-?}"; }
say() { echo "[cascade \$(uptime_s)s] $*"; }
shout() {
  echo ""
  echo "############################################################"
  echo "# $*"
  echo "############################################################"
}

# Wait RETRY_DELAY seconds; Enter opens a shell for troubleshooting, then the retry goes on.
pause() {
  say "retrying in \${1:-$RETRY_DELAY} s (press Enter for a shell)"
  t0=$(date +%s)
  if read -t "\${1:-$RETRY_DELAY}" -r _ 2>/dev/null; then
    echo "Type 'exit' to resume."
    setsid cttyhack sh
  fi
  # read returns at once on a console without input: still wait the full delay.
  left=$(( \${1:-$RETRY_DELAY} - ($(date +%s) - t0) ))
  [ "$left" -gt 0 ] && sleep "$left"
}

mount_basics() {
  mkdir -p /proc /sys /dev /tmp /run
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
  mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs tmpfs /run
  echo 4 > /proc/sys/kernel/printk # keep kernel chatter from burying the status lines
}

# Load the driver of every device the kernel reports (modalias); loading one (virtio_pci)
# reveals more devices (virtio_net), so repeat until nothing new appears. USB devices show up
# a second or two after their controller's driver loads, after the scan: EARLY_MODULES (USB
# keyboards, USB NICs) are loaded first, so they bind such a device the moment it appears.
load_drivers() {
  [ -n "$EARLY_MODULES" ] && modprobe -qa $EARLY_MODULES 2>/dev/null
  before=-1
  pass=0
  while [ "$pass" -lt 4 ]; do
    pass=$((pass + 1))
    find /sys/devices -name modalias -type f 2>/dev/null | while read -r f; do
      read -r a < "$f" 2>/dev/null && [ -n "$a" ] && echo "$a"
    done | sort -u > /run/modaliases
    xargs -r modprobe -qa < /run/modaliases 2>/dev/null
    now=$(wc -l < /proc/modules)
    [ "$now" = "$before" ] && break
    before=$now
  done
  say "drivers loaded: $(cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' ')"
}

nics() {
  for d in /sys/class/net/*; do
    n=\${d##*/}
    [ "$n" = lo ] || [ ! -e "$d/device" ] || echo "$n"
  done
}

# The interface iPXE booted from (BOOTIF=01-aa-bb-...), else every wired interface.
boot_nics() {
  bootif=""
  for w in $(cat /proc/cmdline); do
    case "$w" in BOOTIF=01-*) bootif=$(echo "\${w#BOOTIF=01-}" | tr '-' ':' | tr 'A-F' 'a-f') ;; esac
  done
  all=$(nics)
  if [ -n "$bootif" ]; then
    for n in $all; do
      [ "$(cat /sys/class/net/$n/address)" = "$bootif" ] && { echo "$n"; return; }
    done
  fi
  echo "$all"
}

network_up() {
  # Every chunk server's gate hands connections to its HTTP server over 127.0.0.1.
  ip link set lo up
  if [ -z "$(nics)" ]; then
    say "no network interface from the hardware's drivers; loading all known NIC drivers"
    modprobe -qa $FALLBACK_MODULES 2>/dev/null
    sleep 1
  fi
  if [ -z "$(nics)" ]; then
    shout "NO NETWORK INTERFACE FOUND"
    say "PCI network controllers (vendor:device), none has a driver here:"
    for d in /sys/bus/pci/devices/*; do
      case "$(cat "$d/class")" in 0x02*) echo "    \${d##*/} $(cat "$d/vendor"):$(cat "$d/device")" ;; esac
    done
    return 1
  fi
  for n in $(boot_nics); do
    ip link set "$n" up
    # A name from the MAC (the DHCP server may give a better one): "(none)" helps nobody.
    hostname "cascade-$(tr -d ':' < /sys/class/net/$n/address)"
    say "DHCP on $n ($(cat /sys/class/net/$n/address))"
    # -n: give up after -t tries; without -q udhcpc stays in the background to renew the lease.
    if udhcpc -i "$n" -s /etc/udhcpc/default.script -t 8 -T 3 -A 3 -n -p "/run/udhcpc.$n.pid" \\
      -x "hostname:$(hostname)" >/dev/null 2>&1; then
      say "network up: $n $(ip -4 -o addr show dev "$n" | awk '{print $4}')"
      MAC=$(cat "/sys/class/net/$n/address")
      NETIF=$n
      return 0
    fi
    say "no DHCP lease on $n"
  done
  shout "NO DHCP LEASE (is the cable in, is the DHCP server up?)"
  return 1
}

# cascade.* settings from the kernel command line, checked with the rules of netboot/cmdline.ts.
read_settings() {
  MASTER="" TARGET="" IMAGE="" AFTER="serve" LLDP="" bad=""
  for w in $1; do
    case "$w" in
      ${k.master}=*) MASTER=\${w#*=} ;;
      ${k.target}=*) TARGET=\${w#*=} ;;
      ${k.imageId}=*) IMAGE=\${w#*=} ;;
      ${k.after}=*) AFTER=\${w#*=} ;;
      ${k.lldp}=*) LLDP=\${w#*=} ;;
      cascade.*) bad="$bad; unknown setting \\"\${w%%=*}\\"" ;;
    esac
  done
  case "$MASTER" in
    "") bad="$bad; ${k.master}=URL is missing" ;;
    http://?*|https://?*) ;;
    *) bad="$bad; ${k.master} \\"$MASTER\\": must start with http:// or https://" ;;
  esac
  case "$TARGET" in
    "") bad="$bad; ${k.target}=DISK is missing" ;;
    /*)
      case "$TARGET" in
        *..*|*[!A-Za-z0-9._/:+-]*) bad="$bad; ${k.target} \\"$TARGET\\": must be a device path such as /dev/sda" ;;
        /dev/?*) ;;
        *) bad="$bad; ${k.target} \\"$TARGET\\": must be a device path such as /dev/sda" ;;
      esac ;;
    *) # a target rule (netboot/target_rule.ts): the terms here, their values in the client
      set -f
      for term in $(echo "$TARGET" | tr ',' ' '); do
        case "$term" in
          auto|usb|largest|path:/dev/?*|model:?*|min:?*|max:?*) ;;
          *) bad="$bad; ${k.target} \\"$TARGET\\": must be a device path such as /dev/sda or a target rule (term \\"$term\\" is unknown (known: auto, path:, model:, min:, max:, usb, largest))"; break ;;
        esac
      done
      set +f ;;
  esac
  if [ -n "$IMAGE" ]; then
    case "$IMAGE" in
      *[!0-9a-f]*) bad="$bad; ${k.imageId} \\"$IMAGE\\": must be 64 lowercase hex digits (a SHA-256)" ;;
      *) [ \${#IMAGE} -eq 64 ] || bad="$bad; ${k.imageId} \\"$IMAGE\\": must be 64 lowercase hex digits (a SHA-256)" ;;
    esac
  fi
  # ${k.lldp}=S (the build's --kernel-args): listen up to S s for the switch's LLDP frame.
  case "$LLDP" in
    ""|[0-9]|[0-9][0-9]|[0-9][0-9][0-9]) ;;
    *) bad="$bad; ${k.lldp} \\"$LLDP\\": must be seconds to wait, 0 to 999" ;;
  esac
  case "$AFTER" in
    ${AFTER_ACTIONS.join("|")}) ;;
    *) bad="$bad; ${k.after} \\"$AFTER\\": must be one of ${AFTER_ACTIONS.join(", ")}" ;;
  esac
  if [ -n "$bad" ]; then
    echo "Bad cascade settings on the kernel command line: \${bad#; }"
    return 1
  fi
}

run_client() {
  set -- client --master "$MASTER" --target "$TARGET"
  [ -n "$IMAGE" ] && set -- "$@" --image-id "$IMAGE"
  set -- "$@" --after "$AFTER"
  [ -n "$MAC" ] && set -- "$@" --mac "$MAC" # lets the master match this PC to its netboot
  [ -n "$LLDP" ] && [ -n "$NETIF" ] && set -- "$@" --lldp "$NETIF" --lldp-wait "$LLDP"
  say "running: cascade $*"
  /bin/cascade "$@"
}

finish() {
  sync
  case "$AFTER" in
    reboot) shout "DISK IMAGED AND VERIFIED: REBOOTING"; sleep 3; reboot -f ;;
    *) shout "DISK IMAGED AND VERIFIED: POWERING OFF"; sleep 3; poweroff -f ;;
  esac
}

disk_failed() {
  shout "DISK FAILED: this PC stops here (the disk, byte offset and error are above)"
  say "replace or check the disk, then power the PC on again; Enter opens a shell"
  while :; do
    if read -r _ 2>/dev/null; then setsid cttyhack sh; else sleep 3600; fi
  done
}

main() {
  mount_basics
  exec < /dev/console > /dev/console 2>&1
  # Every connection holds a descriptor: at the default limit (1024 or 4096) idle connections
  # from one host on the LAN would fill it in a second. The client caps its own below this.
  ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || say "cannot raise ulimit -n"
  shout "Cascade netboot: $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPU(s), $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
  if ! read_settings "$(cat /proc/cmdline)"; then
    shout "BAD BOOT SETTINGS: fix the master's configuration; rebooting to fetch new ones"
    pause 30
    reboot -f
  fi
  say "master $MASTER, target $TARGET, image \${IMAGE:-(the master's)}, after $AFTER"
  load_drivers
  until network_up; do pause; load_drivers; done
  attempt=0
  while :; do
    attempt=$((attempt + 1))
    # A target rule is the client's to resolve (it names the disk it chose, and why).
    if [ "\${TARGET#/}" != "$TARGET" ] && [ ! -b "$TARGET" ]; then
      shout "TARGET DISK $TARGET NOT FOUND"
      say "disks seen: $(ls /sys/block | grep -v -e '^loop' -e '^ram' | tr '\\n' ' ')"
    else
      run_client
      code=$?
      [ "$code" = 0 ] && finish
      # 2: this PC's own disk failed (no disk matches, or it fails writes or reads after the
      # client's retries): stop here with the reason on the screen, never a reboot loop.
      [ "$code" = 2 ] && disk_failed
      shout "CASCADE CLIENT FAILED (exit code $code, attempt $attempt; reason above)"
    fi
    if [ "$attempt" -ge "$ATTEMPTS_BEFORE_REBOOT" ]; then
      shout "$attempt FAILED ATTEMPTS: REBOOTING TO START AFRESH"
      sleep 5
      reboot -f
    fi
    pause
  done
}

# Sourcing with CASCADE_INIT_LIB=1 only defines the functions (tests).
if [ -z "$CASCADE_INIT_LIB" ]; then
  main
  # PID 1 must never exit: the kernel would panic.
  while :; do sleep 3600; done
fi
`;
}

/** busybox udhcpc event script: configure the interface, route and DNS from the lease. */
export function renderUdhcpcScript(): string {
  return `#!/bin/sh
# udhcpc event script (rendered by netboot/init_script.ts): udhcpc runs it as "script EVENT"
# with the lease in the environment; without it udhcpc gets a lease and configures nothing.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" \${broadcast:+broadcast "$broadcast"} dev "$interface"
    if [ -n "$router" ]; then
      while ip route del default 2>/dev/null; do :; done
      for r in $router; do ip route add default via "$r" dev "$interface" && break; done
    fi
    : > /etc/resolv.conf
    [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    [ -n "$hostname" ] && hostname "$hostname"
    ;;
  leasefail|nak)
    echo "udhcpc: $1 on $interface\${message:+: $message}"
    ;;
esac
exit 0
`;
}
