# shellcheck shell=bash
# bench/lib/peers.sh — one transfer of a file from srv to every client of a
# lab (tests/integration/lab.sh), with a peer tool or with mlcast, measured
# the same way for every tool. Source it after lab.sh, with the lab up.
#
#   peer_run TOOL FILE DIR      TOOL: udpcast | uftp | mlcast
#   peer_iperf DIR [SECONDS]    the raw ceiling: UDP multicast with iperf 2
#   peer_mlcast_prepare IMAGE STORE   prints the seconds `mlcast prepare` took
#   peer_get DIR KEY            prints one field of a run's result
#
# Each run writes DIR/result (KEY=VALUE lines, sourceable) and returns 0 when
# it could be measured — a hung or corrupt transfer is a result, not an
# error. Fields:
#   tool status(ok|NO|HUNG|FAIL|n/a) note size clients
#   times      per receiver c1..cN: seconds from the sender's start to that
#              receiver being complete, or HUNG / FAIL:rc
#   slowest    the largest of times (only when every receiver completed)
#   mibps      size / slowest, in MiB/s
#   wire_bytes bytes the sender's eth0 transmitted during the run (Ethernet
#              frames incl. headers and every resend); wire_per_byte = / size
#   cpu_s      user+sys CPU seconds of the sender and all receivers during
#              the run; cpu_per_gib = cpu_s / (size in GiB)
#   identical  yes | NO(c2 ...) | HUNG(c3 ...): every copy cmp-equal to FILE
# iperf adds rx_mibps (per receiver), ceiling_mibps (the smallest) and
# mean_mibps; its size is the payload the sender sent.
#
# Knobs (environment):
#   PEER_RATE     fixed send rate for the tools that take one (default 950M,
#                 bits/s with k/M/G suffix): udp-sender --max-bitrate,
#                 uftp -R, mlcast send --rate
#   PEER_TIMEOUT  hard limit of one run in seconds (default 300)
#   PEER_STALL    a run with no receiver progress for this long is HUNG (30)
#   PEER_GRACE    how long receivers may trail the sender's exit (15)
#   PEER_JOIN_WAIT  how long a sender waits for all receivers to join (20)
#   PEER_KEEP=1   keep the received copies and logs
#   MLCAST        the mlcast binary (default ${MLBUILD:-build}/src/mcast/mlcast)
#   UDPCAST_SENDER_OPTS UDPCAST_RECEIVER_OPTS UFTP_OPTS UFTPD_OPTS
#   MLCAST_SEND_OPTS MLCAST_RECEIVE_OPTS  extra options per tool
#   IPERF_BW      iperf's offered rate for the ceiling (default 2000M)
#
# Measurement. Every process of a tool runs under /usr/bin/time inside its
# namespace; a small wrapper notes the instant it exits. Receivers start
# first and are waited for until ready (joined, key loaded ...); the clock
# starts just before the sender starts. A receiver is complete when its
# process exits with status 0 (udpcast, mlcast) or when uftpd runs its
# post-receive hook for the file (uftpd is a daemon and does not exit).
# Processes still running when the run ends are stopped (TERM, then KILL).

PEER_RATE=${PEER_RATE:-950M}
PEER_TIMEOUT=${PEER_TIMEOUT:-300}
PEER_STALL=${PEER_STALL:-30}
PEER_GRACE=${PEER_GRACE:-15}
PEER_JOIN_WAIT=${PEER_JOIN_WAIT:-20}
PEER_GROUP=${PEER_GROUP:-239.192.77.1}
PEER_PORT=${PEER_PORT:-9877}
IPERF_BW=${IPERF_BW:-2000M}
MLCAST=${MLCAST:-${MLBUILD:-build}/src/mcast/mlcast}
PEER_TICK=$(getconf CLK_TCK 2>/dev/null || echo 100)

_peer_dir=""     # the current run's directory
_peer_names=()   # processes of the current run (sender "srv", receivers "c1"..)
_peer_wrappers=()

# peer_log MSG — a progress line on stderr.
peer_log() { printf '  %s\n' "$*" >&2; }

# peer_get DIR KEY — prints KEY from DIR/result.
# A key given twice (a driver appending a correction) reads as its last value.
peer_get() { sed -n "s/^$2=//p" "$1/result" 2>/dev/null | tail -1 | sed "s/^'//; s/'\$//"; }

# _peer_rate_bps RATE — RATE (950M, 1g, 100000k, 5e8) in bits/s.
_peer_rate_bps() {
  awk -v r="$1" 'BEGIN { s = tolower(r); m = 1; sub(/bit$/, "", s); sub(/bps$/, "", s)
    if (s ~ /g$/) { m = 1e9; sub(/g$/, "", s) } else if (s ~ /m$/) { m = 1e6; sub(/m$/, "", s) }
    else if (s ~ /k$/) { m = 1e3; sub(/k$/, "", s) }
    if (s !~ /^[0-9]+(\.[0-9]+)?(e[0-9]+)?$/) exit 1; printf "%.0f\n", s * m }'
}

_peer_now() { echo "$EPOCHREALTIME"; }

# _peer_begin DIR — starts a run: an empty DIR with one subdirectory per client.
_peer_begin() {
  _peer_dir=$1 _peer_names=() _peer_wrappers=()
  rm -rf "$_peer_dir"
  mkdir -p "$_peer_dir" || return 1
  local c
  for c in $(lab_clients); do mkdir -p "$_peer_dir/$c"; done
}

# _peer_spawn NAME HOST CMD... — starts CMD in HOST under /usr/bin/time.
# Files: NAME.log (stdout+stderr), NAME.cpu (time's "cpu USER SYS"),
# NAME.tpid (time's PID), NAME.end (exit instant), NAME.rc (exit status;
# written last, so its presence means "ended").
_peer_spawn() {
  local name=$1 host=$2 d=$_peer_dir; shift 2
  _peer_names+=("$name")
  (
    trap - EXIT INT TERM HUP
    # ip netns exec execs time, so $! is time's PID and the tool its child.
    ip netns exec "$(lab_ns "$host")" /usr/bin/time -f 'cpu %U %S' -o "$d/$name.cpu" "$@" >"$d/$name.log" 2>&1 &
    echo $! >"$d/$name.tpid"
    wait $!
    rc=$?
    # (Quietly: on an abort the run directory may be gone already.)
    { echo "$EPOCHREALTIME" >"$d/$name.end" && echo "$rc" >"$d/$name.rc"; } 2>/dev/null
  ) &
  _peer_wrappers+=($!)
  lab_wait_file "$d/$name.tpid" 5
}

_peer_ended() { [ -e "$_peer_dir/$1.rc" ]; }

# _peer_pid NAME — prints the PID of NAME's tool process (the child of time).
_peer_pid() {
  local t; t=$(cat "$_peer_dir/$1.tpid" 2>/dev/null) || return 1
  pgrep -P "$t" 2>/dev/null | head -1
}

# _peer_ticks PID — prints utime+stime of PID in clock ticks (0 if gone).
_peer_ticks() {
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }   # after the command name, which may hold spaces
  awk '{ print $12 + $13 }' <<<"$s"
}

# _peer_stop NAME — ends NAME's tool if still running: TERM, then KILL.
_peer_stop() {
  local name=$1 pid t i
  _peer_ended "$name" && return 0
  : >"$_peer_dir/$name.stopped"
  pid=$(_peer_pid "$name")
  t=$(cat "$_peer_dir/$name.tpid" 2>/dev/null)
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 30; i++)); do _peer_ended "$name" && return 0; sleep 0.1; done
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  for ((i = 0; i < 20; i++)); do _peer_ended "$name" && return 0; sleep 0.1; done
  [ -n "$t" ] && kill -KILL "$t" 2>/dev/null
  return 0
}

# _peer_end_all — stops every process of the run and reaps the wrappers.
_peer_end_all() {
  local n
  for n in "${_peer_names[@]}"; do _peer_stop "$n"; done
  wait "${_peer_wrappers[@]}" 2>/dev/null
  _peer_wrappers=()
}

# _peer_cpu NAME — prints NAME's CPU seconds (user+sys) over the run:
# time's total, less the baseline noted at the clock's start (NAME.base, in
# ticks: work done before the transfer, such as uftpd making its key).
_peer_cpu() {
  local f="$_peer_dir/$1.cpu" base
  base=$(cat "$_peer_dir/$1.base" 2>/dev/null || echo 0)
  awk -v b="$base" -v hz="$PEER_TICK" '$1 == "cpu" { c = $2 + $3; f = 1 } END { if (!f) print "?"; else { c -= b / hz; if (c < 0) c = 0; printf "%.2f\n", c } }' "$f" 2>/dev/null || echo "?"
}

# _peer_progress — prints the bytes allocated under all receivers' directories.
_peer_progress() { du -s -B1 "$_peer_dir"/c*/ 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# _peer_us — the wall clock in microseconds (integer, for bash arithmetic).
_peer_us() { local t=$EPOCHREALTIME; echo "${t/[.,]/}"; }

# _peer_watch T0 DONE_FN — waits until the sender ("srv") has ended and
# every client is done (DONE_FN C succeeds), or the run is hung: the sender
# ended PEER_GRACE s ago and some receiver is not done, or nothing has grown
# for PEER_STALL s, or PEER_TIMEOUT s passed since T0. Sets _peer_why.
# Polls every 0.1 s with builtins only, to stay off the tools' CPUs.
_peer_watch() {
  local t0=${1/[.,]/} done_fn=$2 now c all n prog mark=0 last_prog last_check=0 ended_at=0 seen=0
  local grace=$((PEER_GRACE * 1000000)) stall=$PEER_STALL deadline=$((t0 + PEER_TIMEOUT * 1000000))
  # A sender may legitimately sit PEER_JOIN_WAIT s waiting for a receiver.
  ((stall < PEER_JOIN_WAIT + 10)) && stall=$((PEER_JOIN_WAIT + 10))
  stall=$((stall * 1000000))
  local clients
  mapfile -t clients < <(lab_clients)
  last_prog=$t0 _peer_why=""
  while :; do
    now=${EPOCHREALTIME/[.,]/}
    all=1 n=0
    for c in "${clients[@]}"; do if "$done_fn" "$c"; then n=$((n + 1)); else all=0; fi; done
    if _peer_ended srv; then
      [ "$all" = 1 ] && return 0
      [ "$ended_at" = 0 ] && ended_at=$now
      if ((now - ended_at > grace)); then
        _peer_why="sender ended, $n/${#clients[@]} receivers done ${PEER_GRACE}s later"; return 1
      fi
    elif [ "$all" = 1 ]; then
      # Every copy is complete; give the sender the grace period to notice.
      [ "$ended_at" = 0 ] && ended_at=$now
      if ((now - ended_at > grace)); then
        _peer_why="receivers done, sender still running ${PEER_GRACE}s later"; return 0
      fi
    fi
    if ((now > deadline)); then
      _peer_why="timeout ${PEER_TIMEOUT}s, $n/${#clients[@]} receivers done"; return 1
    fi
    # Progress (bytes written by receivers, or one more receiver done),
    # checked every 2 s: du is cheap, but not free on 2 cores.
    if ((now - last_check >= 2000000)); then
      last_check=$now
      prog=$(_peer_progress)
      if ((prog - mark > 1048576 || n > seen)); then
        mark=$prog last_prog=$now seen=$n
      elif ((now - last_prog > stall)); then
        _peer_why="no progress for $((stall / 1000000))s, $n/${#clients[@]} receivers done"; return 1
      fi
    fi
    sleep 0.1
  done
}

# _peer_done_exit C — client C is done when its process ended with status 0.
_peer_done_exit() { [ -e "$_peer_dir/$1.rc" ] && [ "$(cat "$_peer_dir/$1.rc")" = 0 ]; }
# _peer_finished_exit C — C's process ended (well or badly): no need to wait.
_peer_finished_exit() { [ -e "$_peer_dir/$1.rc" ]; }

# _peer_finish TOOL FILE SIZE T0 TX0 OUTNAME DONE_KIND — stops what
# is left, then measures and writes DIR/result. OUTNAME is the copy's path
# inside each client directory; DONE_KIND is "exit" or "hook".
_peer_finish() {
  local tool=$1 file=$2 size=$3 t0=$4 tx0=$5 out=$6 kind=$7
  local tx1 c t times=() slowest="" hung=() diff=() failed=() cpu=0 x okall=1 status note="" identical
  tx1=$(lab_tx_bytes srv)
  _peer_end_all
  for c in $(lab_clients); do
    t=""
    if [ "$kind" = hook ] && [ -s "$_peer_dir/$c.done" ]; then
      t=$(awk -v t0="$t0" 'NR == 1 { printf "%.2f", $1 - t0 }' "$_peer_dir/$c.done")
    elif [ "$kind" = exit ] && _peer_done_exit "$c"; then
      t=$(awk -v t0="$t0" '{ printf "%.2f", $1 - t0 }' "$_peer_dir/$c.end")
    fi
    if [ -n "$t" ]; then
      times+=("$t")
      if [ -z "$slowest" ] || awk -v a="$t" -v b="$slowest" 'BEGIN { exit !(a > b) }'; then slowest=$t; fi
      cmp -s "$file" "$_peer_dir/$c/$out" || diff+=("$c")
    elif [ -e "$_peer_dir/$c.rc" ] && [ ! -e "$_peer_dir/$c.stopped" ]; then
      # It ended by itself without completing: the tool gave up (and said so).
      times+=("FAIL:$(cat "$_peer_dir/$c.rc")"); failed+=("$c"); okall=0
    else
      times+=("HUNG"); hung+=("$c"); okall=0
    fi
  done
  for x in "${_peer_names[@]}"; do
    t=$(_peer_cpu "$x")
    [ "$t" = "?" ] && { note+="no CPU figure for $x; "; continue; }
    cpu=$(awk -v a="$cpu" -v b="$t" 'BEGIN { printf "%.2f", a + b }')
  done
  # Silent corruption: a receiver said "done" but its copy differs.
  if [ ${#hung[@]} -gt 0 ]; then status=HUNG identical="HUNG(${hung[*]})"
  elif [ ${#diff[@]} -gt 0 ]; then status=NO identical="NO(${diff[*]})"
  elif [ ${#failed[@]} -gt 0 ]; then status=FAIL identical="NO(${failed[*]})"
  else status=ok identical=yes
  fi
  [ ${#hung[@]} -gt 0 ] && [ ${#diff[@]} -gt 0 ] && identical+=" NO(${diff[*]})"
  [ -n "$_peer_why" ] && note+="$_peer_why; "
  if [ -e "$_peer_dir/srv.stopped" ]; then note+="sender stopped by the bench; "
  elif [ "$(cat "$_peer_dir/srv.rc" 2>/dev/null)" != 0 ]; then note+="sender exit $(cat "$_peer_dir/srv.rc" 2>/dev/null); "
  fi
  {
    echo "tool='$tool'"
    echo "status='$status'"
    echo "note='${note%; }'"
    echo "size=$size"
    echo "clients=$LAB_N"
    echo "times='${times[*]}'"
    if [ "$okall" = 1 ] && [ -n "$slowest" ]; then
      echo "slowest=$slowest"
      awk -v s="$size" -v t="$slowest" 'BEGIN { printf "mibps=%.1f\n", s / 1048576 / t }'
    else
      echo "slowest="; echo "mibps="
    fi
    echo "wire_bytes=$((tx1 - tx0))"
    awk -v w="$((tx1 - tx0))" -v s="$size" 'BEGIN { printf "wire_per_byte=%.3f\n", w / s }'
    echo "cpu_s=$cpu"
    awk -v c="$cpu" -v s="$size" 'BEGIN { printf "cpu_per_gib=%.1f\n", c / (s / 1073741824) }'
    echo "identical='$identical'"
  } >"$_peer_dir/result"
  if [ "${PEER_KEEP:-0}" != 1 ]; then rm -f "$_peer_dir"/c*/"$out"; rm -rf "$_peer_dir"/c*/dst; fi
  peer_log "$tool: times ${times[*]} s; identical $identical${note:+; ${note%; }}"
  return 0
}

# _peer_na TOOL DIR NOTE — writes a result for a tool that could not run.
_peer_na() {
  mkdir -p "$2"
  printf "tool='%s'\nstatus='n/a'\nnote='%s'\n" "$1" "$3" >"$2/result"
  peer_log "$1: n/a ($3)"
}

# peer_run TOOL FILE DIR — one transfer of FILE to every client.
peer_run() {
  local tool=$1 file=$2 dir=$3
  [ -r "$file" ] || { peer_log "no such file: $file"; return 1; }
  case $tool in
    udpcast) peer_udpcast "$file" "$dir" ;;
    uftp) peer_uftp "$file" "$dir" ;;
    mlcast) peer_mlcast "$file" "$dir" ;;
    *) peer_log "unknown tool $tool"; return 1 ;;
  esac
}

# peer_udpcast FILE DIR — udp-sender in srv, udp-receiver in each client.
# The sender waits for all N receivers (--min-receivers), at most
# PEER_JOIN_WAIT s (--max-wait), then starts with those it has.
peer_udpcast() {
  local file=$1 dir=$2 size c t0 tx0 rate n
  command -v udp-sender >/dev/null || { _peer_na udpcast "$dir" "udpcast not installed"; return 0; }
  size=$(stat -c %s "$file") n=$LAB_N
  rate=$(_peer_rate_bps "$PEER_RATE")
  _peer_begin "$dir" || return 1
  for c in $(lab_clients); do
    # shellcheck disable=SC2086
    _peer_spawn "$c" "$c" udp-receiver --interface eth0 --nokbd ${UDPCAST_RECEIVER_OPTS:-} --file "$dir/$c/out"
  done
  sleep 0.5
  tx0=$(lab_tx_bytes srv) t0=$(_peer_now)
  # shellcheck disable=SC2086
  _peer_spawn srv srv udp-sender --interface eth0 --nokbd --min-receivers "$n" --max-wait "$PEER_JOIN_WAIT" \
    --max-bitrate "$((rate / 1000))k" ${UDPCAST_SENDER_OPTS:-} --file "$file"
  _peer_watch "$t0" _peer_finished_exit
  _peer_finish udpcast "$file" "$size" "$t0" "$tx0" out exit
}

# peer_uftp FILE DIR — uftp in srv, uftpd in each client. Closed group (-H
# with the clients' IDs) so the sender waits for exactly these N. uftpd runs
# a hook when the file is complete; that instant is the completion time.
peer_uftp() {
  local file=$1 dir=$2 size c t0 tx0 hosts="" kbps name ip
  command -v uftp >/dev/null || { _peer_na uftp "$dir" "uftp not installed"; return 0; }
  size=$(stat -c %s "$file") name=$(basename "$file")
  kbps=$(($(_peer_rate_bps "$PEER_RATE") / 1000))
  _peer_begin "$dir" || return 1
  for c in $(lab_clients); do
    mkdir -p "$dir/$c/dst"
    printf '#!/bin/sh\n# uftpd post-receive hook: note the instant the file is complete.\necho "$(date +%%s.%%N) $*" >>"%s"\n' \
      "$dir/$c.done" >"$dir/$c.hook"
    chmod +x "$dir/$c.hook"
    # shellcheck disable=SC2086
    _peer_spawn "$c" "$c" uftpd -d -q -I eth0 -D "$dir/$c/dst" -s "$dir/$c.hook" ${UFTPD_OPTS:-}
    ip=$(lab_ip "$c")
    hosts+=$(awk -v ip="$ip" 'BEGIN { split(ip, a, "."); printf ",0x%02x%02x%02x%02x", a[1], a[2], a[3], a[4] }')
  done
  for c in $(lab_clients); do
    lab_wait_file "$dir/$c.log" 15 'key|Listening|version' || peer_log "uftpd in $c slow to start"
  done
  sleep 0.3
  # Work done so far (key generation) is set-up, not transfer: note it.
  for c in $(lab_clients); do _peer_ticks "$(_peer_pid "$c")" >"$dir/$c.base"; done
  tx0=$(lab_tx_bytes srv) t0=$(_peer_now)
  # shellcheck disable=SC2086
  _peer_spawn srv srv uftp -I eth0 -C none -R "$kbps" -b 1400 -Y none -H "${hosts#,}" \
    -S "$dir/srv.status" ${UFTP_OPTS:-} "$file"
  _peer_watch "$t0" _peer_uftp_done
  for c in $(lab_clients); do [ -e "$dir/$c/dst/$name" ] && mv "$dir/$c/dst/$name" "$dir/$c/out"; done
  _peer_finish uftp "$file" "$size" "$t0" "$tx0" out hook
}
_peer_uftp_done() { [ -s "$_peer_dir/$1.done" ]; }

# peer_mlcast_prepare IMAGE STORE — runs `mlcast prepare` (outside the lab)
# and prints its wall-clock seconds; returns non-zero when it failed.
peer_mlcast_prepare() {
  local img=$1 store=$2 t0 rc
  [ -x "$MLCAST" ] || return 2
  rm -rf "$store"
  t0=$(_peer_now)
  "$MLCAST" prepare "$img" "$store" >"$store.prepare.log" 2>&1; rc=$?
  [ "$rc" = 0 ] || { peer_log "mlcast prepare failed ($rc), see $store.prepare.log"; return 1; }
  awk -v a="$t0" -v b="$(_peer_now)" 'BEGIN { printf "%.2f\n", b - a }'
}

# peer_mlcast FILE DIR [STORE] — mlcast send in srv, mlcast receive in each
# client. STORE (default $FILE.mlstore) must hold `mlcast prepare FILE`'s
# output; when it is missing it is prepared here first (time not counted).
peer_mlcast() {
  local file=$1 dir=$2 store=${3:-${MLCAST_STORE:-$1.mlstore}} size c t0 tx0 n=$LAB_N
  if [ ! -x "$MLCAST" ]; then _peer_na mlcast "$dir" "mlcast missing"; return 0; fi
  size=$(stat -c %s "$file")
  if [ ! -d "$store" ]; then
    peer_mlcast_prepare "$file" "$store" >/dev/null || { _peer_na mlcast "$dir" "mlcast prepare failed"; return 0; }
  fi
  _peer_begin "$dir" || return 1
  for c in $(lab_clients); do
    # shellcheck disable=SC2086
    _peer_spawn "$c" "$c" "$MLCAST" receive --interface eth0 --group "$PEER_GROUP" --port "$PEER_PORT" --json \
      ${MLCAST_RECEIVE_OPTS:-} -o "$dir/$c/out"
  done
  # Receivers are ready once they joined the group (or after 2 s if they
  # join only later in their protocol).
  local all; mapfile -t all < <(lab_clients)
  lab_wait_joined 2 "$PEER_GROUP" "${all[@]}" 2>/dev/null || sleep 0.5
  tx0=$(lab_tx_bytes srv) t0=$(_peer_now)
  # shellcheck disable=SC2086
  _peer_spawn srv srv "$MLCAST" send --interface eth0 --group "$PEER_GROUP" --port "$PEER_PORT" \
    --rate "$PEER_RATE" --min-receivers "$n" --wait "$PEER_JOIN_WAIT" --json ${MLCAST_SEND_OPTS:-} "$store"
  _peer_watch "$t0" _peer_finished_exit
  _peer_finish mlcast "$file" "$size" "$t0" "$tx0" out exit
  # mlcast's own account (its last JSON line), beside the measured one: the
  # wire bytes it counted, and receivers whose verdict was not ok.
  local last wb notok=() note
  last=$(grep '"event" *: *"result"' "$dir/srv.log" 2>/dev/null | tail -1)
  wb=$(sed -n 's/.*"wire_bytes" *: *\([0-9]*\).*/\1/p' <<<"$last")
  [ -n "$wb" ] && echo "mlcast_wire_bytes=$wb" >>"$dir/result"
  for c in $(lab_clients); do
    last=$(grep '"event" *: *"result"' "$dir/$c.log" 2>/dev/null | tail -1)
    grep -q '"ok" *: *true' <<<"$last" || notok+=("$c")
  done
  if [ ${#notok[@]} -gt 0 ]; then
    note=$(peer_get "$dir" note)
    echo "note='${note:+$note; }no ok:true result line from ${notok[*]}'" >>"$dir/result"
  fi
  return 0
}

# _peer_iperf_rate CSV — prints a receiver's steady payload rate in MiB/s
# from iperf 2's CSV server report (-i 1 -y C): the mean of the 1-second
# interval reports that carried data, the first (ramp-up) and the last
# (partial) left out when at least three remain. Not iperf's final summary:
# it is printed only when the client's FIN datagram arrives, and when the
# FIN is lost (the loss rule drops it too) the summary printed on exit
# counts the idle seconds after the sender stopped. Prints 0 if nothing came.
_peer_iperf_rate() {
  awk -F, 'NF >= 14 { split($7, iv, "-"); len = iv[2] - iv[1]
      if (len > 0.9 && len <= 1.01 && $8 > 0) { n++; b[n] = $8 / len } }
    END { lo = 1; hi = n; if (n >= 5) { lo = 2; hi = n - 1 }
          for (i = lo; i <= hi; i++) { s += b[i]; k++ }
          printf "%.1f\n", k ? s / k / 1048576 : 0 }' "$1"
}

# peer_iperf DIR [SECONDS] — the raw ceiling of the lab as it is now: iperf 2
# UDP multicast, 1472-byte datagrams, offered at IPERF_BW (well above the
# port rate) for SECONDS (default 6). Records each receiver's received
# payload rate; the ceiling is the smallest (what "everyone has it" can reach).
peer_iperf() {
  local dir=$1 secs=${2:-6} c t0 tx0 rx=() sent
  command -v iperf >/dev/null || { _peer_na iperf "$dir" "iperf not installed"; return 0; }
  _peer_begin "$dir" || return 1
  for c in $(lab_clients); do
    _peer_spawn "$c" "$c" iperf -s -u -B "$PEER_GROUP" -p "$PEER_PORT" -l 1472 -i 1 -y C
  done
  local all; mapfile -t all < <(lab_clients)
  lab_wait_joined 10 "$PEER_GROUP" "${all[@]}" || peer_log "iperf: not every receiver joined"
  tx0=$(lab_tx_bytes srv) t0=$(_peer_now)
  _peer_spawn srv srv iperf -c "$PEER_GROUP" -p "$PEER_PORT" -u -b "$IPERF_BW" -l 1472 -T 1 -t "$secs" -y C
  lab_wait "$((secs + 15))" _peer_ended srv || peer_log "iperf sender overran"
  sleep 1   # let the receivers print their reports
  local tx1; tx1=$(lab_tx_bytes srv)
  _peer_end_all
  for c in $(lab_clients); do rx+=("$(_peer_iperf_rate "$dir/$c.log")"); done
  sent=$(awk -F, 'NF >= 9 { b = $8 } END { print b + 0 }' "$dir/srv.log")
  local cpu=0 x
  for x in "${_peer_names[@]}"; do cpu=$(awk -v a="$cpu" -v b="$(_peer_cpu "$x")" 'BEGIN { printf "%.2f", a + b }'); done
  {
    echo "tool='iperf'"
    echo "status='ok'"
    echo "note='offered $IPERF_BW for ${secs}s, payload MiB/s per receiver'"
    echo "size=$sent"
    echo "clients=$LAB_N"
    echo "rx_mibps='${rx[*]}'"
    echo "times='${rx[*]}'"
    printf '%s\n' "${rx[@]}" | awk 'NR == 1 || $1 < m { m = $1 } { s += $1 } END { printf "ceiling_mibps=%.1f\nmean_mibps=%.1f\nmibps=%.1f\n", m, s / NR, m }'
    echo "wire_bytes=$((tx1 - tx0))"
    awk -v w="$((tx1 - tx0))" -v s="$sent" 'BEGIN { if (s > 0) printf "wire_per_byte=%.3f\n", w / s; else print "wire_per_byte=" }'
    echo "cpu_s=$cpu"
    awk -v c="$cpu" -v s="$sent" 'BEGIN { if (s > 0) printf "cpu_per_gib=%.1f\n", c / (s / 1073741824); else print "cpu_per_gib=" }'
    echo "identical='-'"
  } >"$dir/result"
  peer_log "iperf: received MiB/s ${rx[*]} (ceiling $(peer_get "$dir" ceiling_mibps))"
}
