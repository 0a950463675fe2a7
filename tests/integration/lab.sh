# shellcheck shell=bash
# lab.sh — a simulated LAN made of network namespaces, for integration tests
# and benchmarks. Source it; do not run it.
#
#   source tests/integration/lab.sh
#   lab_require_root              # SKIP (exit 77) unless root and `ip netns` works
#   lab_trap                      # tear the lab down on every exit path
#   lab_up 4 1gbit 1              # switch + srv + c1..c4, ports at 1 Gbit/s, 1 % UDP loss per client
#   lab_exec c1 some-command ...  # run a command inside host c1
#   lab_down                      # (also done by the trap)
#
# Topology. Namespace ${LAB}sw holds bridge br0 (multicast snooping off, so
# the bridge floods multicast like a plain switch). Every host namespace —
# ${LAB}srv (10.99.0.1), ${LAB}c1..cN (10.99.0.11..), and extra hosts added
# with lab_add_host — has one interface, eth0, the end of a veth pair whose
# other end is a port of br0. Nothing is routed outside the lab.
#
# Shaping. RATE (a tc rate such as 1gbit or 100mbit; 0 = unshaped) is applied
# with tbf to both directions of each port: on the switch side (switch ->
# host) and on the host's eth0 (host -> switch), as a full-duplex Ethernet
# port of that speed would be. A sender therefore meets back-pressure at its
# own NIC, as on real hardware. This kernel has no netem.
#
# Loss. LOSS_PERCENT of the UDP arriving at each client is dropped at random,
# independently per client, by an nftables rule in the client's namespace
# (table inet lab, chain in, prerouting hook). Fractions such as 0.5 work
# (resolution 0.01 %). The server is never lossy.
#
# Names. LAB defaults to "ml$$", so labs of concurrent runs never collide.
# Hosts are named srv, c1..cN, or the NAME given to lab_add_host; the
# namespace of host H is ${LAB}H (see lab_ns).
#
# Functions return non-zero on failure; none of them exits the shell except
# lab_require_root / lab_require_cmds (exit 77 = skipped, for meson).

: "${LAB:=ml$$}"
LAB_NET=${LAB_NET:-10.99.0}
LAB_BUFMAX=${LAB_BUFMAX:-33554432}   # socket buffer ceiling wanted (rmem_max / wmem_max); 0 = leave alone

LAB_HOSTS=()     # host names in creation order (srv, c1.., extras)
LAB_N=0          # number of clients
LAB_RATE=0       # default port rate given to lab_up
LAB_UP=0
LAB_EXIT_HOOKS=()

# lab_log MSG... — a diagnostic line on stderr.
lab_log() { printf 'lab[%s]: %s\n' "$LAB" "$*" >&2; }

# lab_ns HOST — prints the namespace name of HOST.
lab_ns() { printf '%s%s\n' "$LAB" "$1"; }

# lab_exec HOST CMD... — runs CMD inside HOST's namespace (ip netns exec).
# `lab_exec c1 prog &` forks a subshell, so $! is the subshell's PID, not
# prog's: to signal prog itself, start it with
# `ip netns exec "$(lab_ns c1)" prog & pid=$!` (ip netns exec keeps the PID).
lab_exec() {
  local h=$1; shift
  ip netns exec "$LAB$h" "$@"
}

# lab_ip HOST — prints HOST's IPv4 address.
lab_ip() {
  case $1 in
    srv) echo "$LAB_NET.1" ;;
    c[0-9]*) echo "$LAB_NET.$((10 + ${1#c}))" ;;
    *) lab_exec "$1" ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]; exit}' ;;
  esac
}

# lab_clients — prints c1 .. cN, one per line.
lab_clients() { local i; for ((i = 1; i <= LAB_N; i++)); do echo "c$i"; done; }

# lab_require_root — exits 77 with "SKIP: ..." unless running as root with
# usable network namespaces.
lab_require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root for network namespaces"; exit 77
  fi
  local probe="${LAB}probe"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "SKIP: needs root for network namespaces (ip netns add failed)"; exit 77
  fi
  if ! ip netns exec "$probe" true 2>/dev/null; then
    ip netns del "$probe" 2>/dev/null
    echo "SKIP: needs root for network namespaces (ip netns exec failed)"; exit 77
  fi
  ip netns del "$probe"
}

# lab_require_cmds CMD... — exits 77 with "SKIP: missing ..." unless every
# CMD is on PATH.
lab_require_cmds() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  if [ ${#missing[@]} -gt 0 ]; then echo "SKIP: missing ${missing[*]}"; exit 77; fi
}

# lab_on_exit CMD — adds a shell command run (before lab_down) by the trap
# that lab_trap installs. Hooks run in reverse order of registration.
lab_on_exit() { LAB_EXIT_HOOKS+=("$1"); }

_lab_exit() {
  local rc=$? i
  trap - EXIT INT TERM HUP
  for ((i = ${#LAB_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do eval "${LAB_EXIT_HOOKS[$i]}" || true; done
  lab_down
  exit "$rc"
}

# lab_trap — installs an EXIT trap (and INT/TERM/HUP -> exit) that runs the
# lab_on_exit hooks and then lab_down, keeping the script's exit status.
lab_trap() {
  trap _lab_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# _lab_tbf DEVICE-NAMESPACE DEVICE RATE — shapes DEVICE's egress to RATE,
# or removes the shaping when RATE is 0.
_lab_tbf() {
  local ns=$1 dev=$2 rate=$3 bps burst
  if [ "$rate" = 0 ]; then
    ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
    return 0
  fi
  bps=$(_lab_rate_bps "$rate") || { lab_log "bad rate '$rate'"; return 1; }
  # A burst of 4 ms of traffic (at least 32 KiB) keeps tbf at its nominal
  # rate without letting bursts well above it through.
  burst=$((bps / 8 / 250))
  [ "$burst" -lt 32768 ] && burst=32768
  ip netns exec "$ns" tc qdisc replace dev "$dev" root tbf rate "$rate" burst "$burst" latency 20ms
}

# _lab_rate_bps RATE — prints RATE (tc syntax: 1gbit, 950mbit, 100M, 5000kbit, 1e9)
# in bits per second.
_lab_rate_bps() {
  awk -v r="$1" 'BEGIN {
    s = tolower(r); m = 1
    if (s ~ /bit$/) sub(/bit$/, "", s)
    else if (s ~ /bps$/) { sub(/bps$/, "", s); m = 8 }
    if (s ~ /g$/) { m *= 1e9; sub(/g$/, "", s) }
    else if (s ~ /m$/) { m *= 1e6; sub(/m$/, "", s) }
    else if (s ~ /k$/) { m *= 1e3; sub(/k$/, "", s) }
    if (s !~ /^[0-9]+(\.[0-9]+)?(e[0-9]+)?$/) exit 1
    printf "%.0f\n", s * m }'
}

# _lab_bufmax — raises the socket buffer ceilings. They are per namespace on
# some kernels; where the namespace refuses the write, the host-wide value is
# raised (only ever raised, never lowered, and not restored: it is a limit,
# not an allocation).
_lab_bufmax() {
  local ns=$1 k cur
  [ "$LAB_BUFMAX" -gt 0 ] || return 0
  for k in net.core.rmem_max net.core.wmem_max; do
    cur=$(ip netns exec "$ns" sysctl -n "$k" 2>/dev/null || echo 0)
    [ "$cur" -ge "$LAB_BUFMAX" ] && continue
    # sysctl -q exits 0 even when the write is refused: read the value back.
    ip netns exec "$ns" sysctl -qw "$k=$LAB_BUFMAX" 2>/dev/null
    cur=$(ip netns exec "$ns" sysctl -n "$k" 2>/dev/null || echo 0)
    [ "$cur" -ge "$LAB_BUFMAX" ] && continue
    cur=$(sysctl -n "$k")
    if [ "$cur" -lt "$LAB_BUFMAX" ]; then
      sysctl -qw "$k=$LAB_BUFMAX" && lab_log "raised host $k from $cur to $LAB_BUFMAX (not namespaced here)"
    fi
  done
}

# _lab_port HOST IP RATE — creates HOST's namespace and its port on the switch.
_lab_port() {
  local h=$1 addr=$2 rate=$3 ns="$LAB$1" sw="$LAB"sw port
  port="p-${h:0:13}"
  ip netns add "$ns" || return 1
  LAB_HOSTS+=("$h")
  ip link add "$port" netns "$sw" type veth peer name eth0 netns "$ns" || return 1
  ip netns exec "$sw" ip link set "$port" master br0 up || return 1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link set eth0 up || return 1
  case $addr in */*) ;; *) addr="$addr/24" ;; esac
  ip netns exec "$ns" ip addr add "$addr" brd + dev eth0 || return 1
  ip netns exec "$ns" ip route add 224.0.0.0/4 dev eth0 || return 1
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.eth0.rp_filter=0 net.ipv4.igmp_max_memberships=256 || return 1
  _lab_bufmax "$ns"
  _lab_tbf "$sw" "$port" "$rate" || return 1
  _lab_tbf "$ns" eth0 "$rate" || return 1
}

# _lab_client_index HOST_OR_INDEX — prints the client index (c3 or 3 -> 3).
_lab_client_index() {
  local i=${1#c}
  case $i in ''|*[!0-9]*) lab_log "not a client: $1"; return 1 ;; esac
  if [ "$i" -lt 1 ] || [ "$i" -gt "$LAB_N" ]; then lab_log "no client $1"; return 1; fi
  echo "$i"
}

# lab_up N RATE LOSS_PERCENT — builds the lab: switch, srv and clients c1..cN.
# RATE 0 leaves ports unshaped; LOSS_PERCENT 0 adds no loss rule.
lab_up() {
  local n=${1:?lab_up N RATE LOSS_PERCENT} rate=${2:-0} loss=${3:-0} i sw="$LAB"sw
  case $n in ''|*[!0-9]*) lab_log "bad client count '$n'"; return 1 ;; esac
  if [ "$n" -lt 1 ] || [ "$n" -gt 200 ]; then lab_log "client count must be 1..200"; return 1; fi
  [ "$LAB_UP" = 1 ] && lab_down
  if [ "$rate" != 0 ]; then _lab_rate_bps "$rate" >/dev/null || { lab_log "bad rate '$rate'"; return 1; }; fi
  LAB_UP=1 LAB_N=$n LAB_RATE=$rate LAB_HOSTS=()
  ip netns add "$sw" || return 1
  ip netns exec "$sw" ip link set lo up
  ip netns exec "$sw" ip link add br0 type bridge mcast_snooping 0 || return 1
  ip netns exec "$sw" ip link set br0 up || return 1
  _lab_port srv "$LAB_NET.1" "$rate" || { lab_log "cannot build srv"; return 1; }
  for ((i = 1; i <= n; i++)); do
    _lab_port "c$i" "$LAB_NET.$((10 + i))" "$rate" || { lab_log "cannot build c$i"; return 1; }
    lab_loss "$i" "$loss" || return 1
  done
}

# lab_add_host NAME IP [RATE] — adds host NAME (e.g. an attacker) on the
# bridge with address IP (/24 unless given); RATE defaults to lab_up's.
lab_add_host() {
  local name=${1:?lab_add_host NAME IP [RATE]} ip=${2:?lab_add_host NAME IP [RATE]} rate=${3:-$LAB_RATE}
  case $name in ''|*[!A-Za-z0-9_]*) lab_log "bad host name '$name'"; return 1 ;; esac
  [ "$LAB_UP" = 1 ] || { lab_log "lab_add_host before lab_up"; return 1; }
  _lab_port "$name" "$ip" "$rate"
}

# lab_slow I RATE — shapes client I's port (both directions) to RATE
# (0 = unshaped). I is 3 or c3.
lab_slow() {
  local i; i=$(_lab_client_index "${1:?lab_slow I RATE}") || return 1
  local rate=${2:?lab_slow I RATE}
  _lab_tbf "$LAB"sw "p-c$i" "$rate" && _lab_tbf "${LAB}c$i" eth0 "$rate"
}

# lab_loss I PERCENT — sets the random UDP loss at client I's ingress
# (replacing any earlier setting; 0 removes it).
lab_loss() {
  local i; i=$(_lab_client_index "${1:?lab_loss I PERCENT}") || return 1
  local pct=${2:?lab_loss I PERCENT} ns="${LAB}c$i" per10k
  per10k=$(awk -v l="$pct" 'BEGIN { if (l !~ /^[0-9]+(\.[0-9]+)?$/ || l > 100) exit 1; printf "%d", l * 100 + 0.5 }') \
    || { lab_log "bad loss '$pct'"; return 1; }
  ip netns exec "$ns" nft delete table inet lab 2>/dev/null
  [ "$per10k" = 0 ] && return 0
  local match="numgen random mod 10000 < $per10k"
  [ "$per10k" -ge 10000 ] && match=""   # 100 %: a dead link for UDP
  ip netns exec "$ns" nft -f - <<EOF || return 1
table inet lab {
  chain in {
    type filter hook prerouting priority -300; policy accept;
    meta l4proto udp $match counter drop comment "lab loss $pct%"
  }
}
EOF
}

# lab_loss_drops I — prints how many packets client I's loss rule dropped.
lab_loss_drops() {
  local i; i=$(_lab_client_index "$1") || return 1
  ip netns exec "${LAB}c$i" nft list table inet lab 2>/dev/null |
    awk '/lab loss/ { for (k = 1; k <= NF; k++) if ($k == "packets") { print $(k + 1); f = 1 } } END { if (!f) print 0 }'
}

# lab_tx_bytes HOST / lab_rx_bytes HOST — print the byte counters of HOST's
# eth0 (frames as handed to / taken from the wire, Ethernet header included).
lab_tx_bytes() { lab_exec "$1" cat /sys/class/net/eth0/statistics/tx_bytes; }
lab_rx_bytes() { lab_exec "$1" cat /sys/class/net/eth0/statistics/rx_bytes; }

# lab_wait TIMEOUT_S CMD... — runs CMD every 0.1 s until it succeeds (returns
# 0) or TIMEOUT_S seconds pass (returns 1).
lab_wait() {
  local t=${1:?lab_wait TIMEOUT CMD...}; shift
  local end; end=$(awk -v t="$t" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.3f", now + t }')
  while ! "$@"; do
    awk -v e="$end" -v now="$EPOCHREALTIME" 'BEGIN { exit !(now >= e) }' && return 1
    sleep 0.1
  done
}

# lab_joined HOST GROUP — succeeds when HOST's eth0 has joined multicast GROUP.
lab_joined() { ip -n "$LAB$1" maddr show dev eth0 2>/dev/null | awk -v g="$2" '$1 == "inet" && $2 == g { f = 1 } END { exit !f }'; }

# lab_wait_joined TIMEOUT_S GROUP HOST... — waits until every HOST joined GROUP.
lab_wait_joined() {
  local t=${1:?lab_wait_joined TIMEOUT GROUP HOST...} g=${2:?lab_wait_joined TIMEOUT GROUP HOST...} h
  shift 2
  for h in "$@"; do lab_wait "$t" lab_joined "$h" "$g" || { lab_log "$h did not join $g"; return 1; }; done
}

# lab_wait_file FILE TIMEOUT_S [PATTERN] — waits until FILE exists (and,
# with PATTERN, until it contains a line matching the extended regex).
lab_wait_file() {
  local f=${1:?lab_wait_file FILE TIMEOUT [PATTERN]} t=${2:?lab_wait_file FILE TIMEOUT [PATTERN]}
  if [ $# -ge 3 ]; then
    lab_wait "$t" grep -qE -- "$3" "$f" 2>/dev/null
  else
    lab_wait "$t" test -e "$f"
  fi
}

# lab_namespaces — prints the namespaces of this lab that exist now.
lab_namespaces() {
  local n
  ip netns list 2>/dev/null | awk '{ print $1 }' | while read -r n; do
    case ${n#"$LAB"} in
      "$n") ;;   # not ours: LAB is not a prefix
      sw|srv|probe) echo "$n" ;;
      c*) [[ ${n#"$LAB"} =~ ^c[0-9]+$ ]] && echo "$n" ;;
      *) local h
         for h in "${LAB_HOSTS[@]}"; do [ "$n" = "$LAB$h" ] && echo "$n"; done ;;
    esac
  done
}

# lab_down — ends every process inside the lab's namespaces (TERM, then KILL
# after up to 2 s) and deletes the namespaces. Safe to call more than once.
lab_down() {
  local nss n pids i
  nss=$(lab_namespaces)
  [ -n "$nss" ] || { LAB_UP=0; return 0; }
  for n in $nss; do
    pids=$(ip netns pids "$n" 2>/dev/null)
    # shellcheck disable=SC2086 # a list of PIDs
    [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
  done
  for ((i = 0; i < 20; i++)); do
    pids=""
    for n in $nss; do pids+=" $(ip netns pids "$n" 2>/dev/null)"; done
    [ -z "${pids// /}" ] && break
    sleep 0.1
  done
  # shellcheck disable=SC2086 # a list of PIDs
  [ -n "${pids// /}" ] && kill -KILL $pids 2>/dev/null
  for n in $nss; do ip netns del "$n" 2>/dev/null || lab_log "cannot delete namespace $n"; done
  LAB_UP=0 LAB_HOSTS=()
}
