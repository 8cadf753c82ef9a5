#!/usr/bin/env bash
# An emulated switched LAN: N hosts, each its own network namespace, on one Linux bridge in a
# "switch" namespace; every port shaped with tbf in both directions (the host side's egress is
# its upload, the switch side's its download), so each port is a full-duplex link of its own.
# Why tbf with a 128 KiB burst: at 100 Mbit/s it carries 11.96 MB/s per port (theory 11.96),
# both ways at once; a 64 KiB burst costs 5 x the CPU (a ring of 12 hosts: 1.2 cores, not 0.24);
# htb queues ACKs behind data (3-5 % lost, one transfer fell to 8 MB/s).
#
#   lab_net.sh up N RATE PREFIX [SUBNET] [OPTION...]
#                                          hosts PREFIXh1..PREFIXhN, host i at SUBNET.i (/24)
#       --port I=RATE     host I's port at RATE instead (a bad cable, a port negotiated down)
#       --switch I=K      host I on switch K (default 1); switches 1..K are joined in a row
#       --uplink RATE     each uplink between two switches, each way (default: RATE)
#   lab_net.sh exec PREFIX I CMD [ARG...]  run CMD in host I, its PID recorded for `down`
#   lab_net.sh stall PREFIX I SECONDS      stop every process in host I, go on SECONDS later
#   lab_net.sh down PREFIX                 end recorded processes, delete namespaces and state
#   lab_net.sh list PREFIX                 namespaces and live recorded PIDs of this prefix
#
# PREFIX (e.g. cas1234-) must be unique per run: everything is named after it, so parallel runs
# and leftovers never collide. Nothing is created in the root namespace except the state folder
# /run/cascade-lab/PREFIX (the PID list), removed by `down`.
set -euo pipefail

STATE_ROOT=${CASCADE_LAB_STATE:-/run/cascade-lab}

die() {
  echo "lab_net.sh: $*" >&2
  exit 1
}

check_prefix() {
  [[ $1 =~ ^[a-z][a-z0-9-]{1,23}$ ]] ||
    die "Invalid prefix \"$1\": use 2..24 lower-case letters, digits and -, starting with a letter"
}

# Namespaces of this prefix (exact prefix match, nothing else).
prefix_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | while read -r ns; do
    if [[ $ns == "$1"* ]]; then echo "$ns"; fi
  done
}

check_rate() {
  [[ $1 =~ ^[0-9]+(\.[0-9]+)?[kmg]?bit$ ]] ||
    die "Invalid rate \"$1\"$2: expected a tc rate like 100mbit"
}

cmd_up() {
  [[ $# -ge 3 ]] || die "usage: up N RATE PREFIX [SUBNET] [--port I=RATE] [--switch I=K] [--uplink RATE]"
  local n=$1 rate=$2 prefix=$3 subnet=10.213.0
  shift 3
  if [[ $# -gt 0 && $1 != --* ]]; then
    subnet=$1
    shift
  fi
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 250 ]] || die "Invalid host count \"$n\": expected 1..250"
  check_rate "$rate" ""
  [[ $subnet =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "Invalid subnet \"$subnet\": expected 10.X.Y"
  check_prefix "$prefix"
  local -A port_rate=() switch_of=()
  local uplink=$rate switches=1
  while [[ $# -gt 0 ]]; do
    case $1 in
    --port | --switch)
      [[ ${2:-} =~ ^([0-9]+)=(.+)$ ]] || die "Invalid $1 \"${2:-}\": expected I=VALUE"
      local host=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
      ((host >= 1 && host <= n)) || die "Invalid $1 \"$2\": host $host is not in 1..$n"
      if [[ $1 == --port ]]; then
        check_rate "$value" " for host $host"
        port_rate[$host]=$value
      else
        [[ $value =~ ^[1-9][0-9]?$ ]] || die "Invalid --switch \"$2\": switch must be 1..99"
        switch_of[$host]=$value
        ((value > switches)) && switches=$value
      fi
      shift 2
      ;;
    --uplink)
      check_rate "${2:-}" " for --uplink"
      uplink=$2
      shift 2
      ;;
    *) die "Unknown option \"$1\" for up" ;;
    esac
  done
  [[ $(id -u) -eq 0 ]] || die "Cannot build the lab: network namespaces need root"
  if [[ -n $(prefix_namespaces "$prefix") || -e $STATE_ROOT/$prefix ]]; then
    die "Cannot build the lab \"$prefix\": it exists already (run: lab_net.sh down $prefix)"
  fi
  mkdir -p "$STATE_ROOT/$prefix"
  : >"$STATE_ROOT/$prefix/pids"
  echo "$n $rate $subnet" >"$STATE_ROOT/$prefix/lab"
  # Half-built labs are taken down again.
  trap 'cmd_down "$prefix" >/dev/null 2>&1 || true' ERR
  # Switch 1 is PREFIXsw (as before there were several), switch K > 1 is PREFIXswK.
  swns() { if (($1 == 1)); then echo "${prefix}sw"; else echo "${prefix}sw$1"; fi; }
  shape() { ip netns exec "$1" tc qdisc replace dev "$2" root tbf rate "$3" burst 128kb latency 20ms; }
  for ((k = 1; k <= switches; k++)); do
    local sw
    sw=$(swns "$k")
    ip netns add "$sw"
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge
    # No IGMP snooping: multicast floods every port, as on a plain switch (udpcast needs it).
    ip -n "$sw" link set br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
    ip -n "$sw" link set br0 up
    if ((k > 1)); then
      # The uplink from switch k-1 to switch k: one full-duplex link at the uplink rate.
      local prev
      prev=$(swns $((k - 1)))
      ip link add "u$k" netns "$prev" type veth peer name "u$((k - 1))" netns "$sw"
      ip -n "$prev" link set "u$k" master br0
      ip -n "$sw" link set "u$((k - 1))" master br0
      ip -n "$prev" link set "u$k" up
      ip -n "$sw" link set "u$((k - 1))" up
      shape "$prev" "u$k" "$uplink"
      shape "$sw" "u$((k - 1))" "$uplink"
    fi
  done
  for ((i = 1; i <= n; i++)); do
    local h=${prefix}h$i sw r=${port_rate[$i]:-$rate}
    sw=$(swns "${switch_of[$i]:-1}")
    ip netns add "$h"
    ip -n "$h" link set lo up
    # The veth pair is created straight inside the two namespaces: no name in the root one.
    ip link add eth0 netns "$h" type veth peer name "p$i" netns "$sw"
    ip -n "$sw" link set "p$i" master br0
    ip -n "$sw" link set "p$i" up
    ip -n "$h" addr add "$subnet.$i/24" brd + dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" route add 224.0.0.0/4 dev eth0
    shape "$h" eth0 "$r"
    shape "$sw" "p$i" "$r"
  done
  trap - ERR
  local extra=""
  ((${#port_rate[@]})) && extra+=", ${#port_rate[@]} port(s) at other rates"
  ((switches > 1)) && extra+=", $switches switches joined by $uplink uplinks"
  echo "lab $prefix up: $n hosts ${prefix}h1..${prefix}h$n at $subnet.1..$subnet.$n, $rate per port each way$extra"
}

# Stop every process in host I's namespace (they are all ours: nothing else runs in it) for
# SECONDS, then let them go on; they go on also when this is interrupted.
cmd_stall() {
  [[ $# -eq 3 ]] || die "usage: stall PREFIX I SECONDS"
  local prefix=$1 i=$2 secs=$3
  check_prefix "$prefix"
  [[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "Invalid stall \"$secs\": expected seconds"
  local ns=${prefix}h$i
  ip netns list | awk '{print $1}' | grep -qx "$ns" || die "No host \"$ns\""
  local pids
  mapfile -t pids < <(ip netns pids "$ns")
  ((${#pids[@]})) || die "Nothing runs in $ns to stall"
  trap 'kill -CONT "${pids[@]}" 2>/dev/null || true' EXIT
  kill -STOP "${pids[@]}"
  echo "stalled $ns (${#pids[@]} processes) for $secs s"
  sleep "$secs"
  kill -CONT "${pids[@]}" 2>/dev/null || true
  trap - EXIT
  echo "resumed $ns"
}

cmd_exec() {
  [[ $# -ge 3 ]] || die "usage: exec PREFIX I CMD [ARG...]"
  local prefix=$1 i=$2
  shift 2
  check_prefix "$prefix"
  [[ -f $STATE_ROOT/$prefix/pids ]] || die "No lab \"$prefix\" (run: lab_net.sh up N RATE $prefix)"
  # The shell inside the namespace records its own PID, then becomes the command (same PID).
  exec ip netns exec "${prefix}h$i" sh -c 'echo $$ >>"$0"; exec "$@"' \
    "$STATE_ROOT/$prefix/pids" "$@"
}

# Is PID alive and still inside one of our namespaces (so a recycled PID is never touched)?
ours() {
  local pid=$1 prefix=$2 ns
  [[ -d /proc/$pid ]] || return 1
  ns=$(ip netns identify "$pid" 2>/dev/null) || return 1
  [[ $ns == "$prefix"* ]]
}

cmd_down() {
  [[ $# -eq 1 ]] || die "usage: down PREFIX"
  local prefix=$1 pidfile
  check_prefix "$prefix"
  pidfile=$STATE_ROOT/$prefix/pids
  local pids=()
  if [[ -f $pidfile ]]; then mapfile -t pids <"$pidfile"; fi
  local live=()
  for pid in "${pids[@]}"; do if ours "$pid" "$prefix"; then live+=("$pid"); fi; done
  if ((${#live[@]})); then
    kill -TERM "${live[@]}" 2>/dev/null || true
    for _ in $(seq 1 30); do
      local left=()
      for pid in "${live[@]}"; do if ours "$pid" "$prefix"; then left+=("$pid"); fi; done
      ((${#left[@]})) || break
      sleep 0.1
    done
    for pid in "${live[@]}"; do
      if ours "$pid" "$prefix"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
  fi
  local stray=0
  for ns in $(prefix_namespaces "$prefix"); do
    # A process we did not start cannot be inside our namespaces; say so loudly if one is.
    local inside
    inside=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    if [[ -n $inside ]]; then
      echo "lab_net.sh: unrecorded processes left in $ns: $inside" >&2
      stray=1
    fi
    ip netns del "$ns"
  done
  rm -rf "${STATE_ROOT:?}/$prefix"
  rmdir "$STATE_ROOT" 2>/dev/null || true
  echo "lab $prefix down"
  return $stray
}

cmd_list() {
  [[ $# -eq 1 ]] || die "usage: list PREFIX"
  check_prefix "$1"
  prefix_namespaces "$1"
  if [[ -f $STATE_ROOT/$1/pids ]]; then
    while read -r pid; do if ours "$pid" "$1"; then echo "pid $pid"; fi; done <"$STATE_ROOT/$1/pids"
  fi
}

case ${1:-} in
up | down | exec | list | stall)
  sub=$1
  shift
  "cmd_$sub" "$@"
  ;;
*)
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  [[ ${1:-} == -h || ${1:-} == --help ]] || exit 2
  ;;
esac
