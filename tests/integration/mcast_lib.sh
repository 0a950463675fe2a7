# shellcheck shell=bash
# mcast_lib.sh — helpers shared by the mlcast integration tests. Source it;
# do not run it.
#
#   source "$(dirname "$0")/mcast_lib.sh"
#   mc_init_lab mcast_loss            # SKIP (77) unless root + netns; temp dir; traps
#   lab_up 4 1gbit 0
#   mc_image "$MC_W/img" 128          # 128 MiB of random data (1 MiB chunks)
#   mc_prepare "$MC_W/img" "$MC_W/store"
#   mc_rx_start r1 c1                 # receiver "r1" on host c1 -> $MC_W/r1.out
#   mc_send_start snd srv "$MC_W/store" -n 1
#   mc_wait snd 120; mc_wait r1 120
#   mc_rx_ok r1 "$MC_W/img"           # exit 0, last JSON line ok, output identical
#   mc_finish                         # exit 0 if no check failed, else 1
#
# Every background process is started through mc_start (by mc_rx_start and
# mc_send_start) and remembered by TAG: its PID in MC_PID[TAG], its stdout in
# $MC_W/TAG.json, its stderr in $MC_W/TAG.err, its exit status (after
# mc_wait) in MC_RC[TAG]. The exit trap ends each of them by its PID, then
# lab.sh's trap tears the lab down, then the temp dir goes (kept when
# MC_KEEP=1, for debugging). Timeouts given to the wait helpers are safety
# limits, never timing assertions.
#
# JSON: mc_json FILE EXPR evaluates the Python expression EXPR with `r` bound
# to the object on FILE's last line (mlcast --json ends with its result
# there); mc_jprog FILE EXPR binds `p` to the last complete JSON line (for
# progress); mc_jall FILE EXPR binds `L` to the list of all of them.
# Booleans print as true/false, containers as JSON.
#
# Env: MLBUILD (build dir, required), MLSRC (source dir, optional).

set -uo pipefail
MC_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lab.sh
source "$MC_HERE/lab.sh"

MLCAST="${MLBUILD:?MLBUILD not set (the meson build directory)}/src/mcast/mlcast"
MC_FAILS=0
MC_W=""
MC_T0=$EPOCHREALTIME
declare -A MC_PID=() MC_RC=()

ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; MC_FAILS=$((MC_FAILS + 1)); }
note() { echo "# [$(mc_elapsed)s] $*"; }
# check DESCRIPTION CMD... — ok when CMD succeeds.
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# die MSG — a failure after which the test cannot go on.
die() { bad "$*"; mc_finish; }

# mc_elapsed — seconds since the test started, e.g. 12.3.
mc_elapsed() { awk -v a="$MC_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# mc_finish — prints the summary and exits 0 when no check failed, else 1.
mc_finish() {
  note "elapsed $(mc_elapsed) s"
  if [ "$MC_FAILS" -gt 0 ]; then echo "$MC_FAILS check(s) failed"; exit 1; fi
  echo "all checks passed"
  exit 0
}

# mc_init NAME — for tests without the lab: SKIP unless mlcast is built,
# makes the temp dir MC_W and an exit trap that removes it.
mc_init() {
  [ -x "$MLCAST" ] || { echo "SKIP: $MLCAST not built"; exit 77; }
  command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
  MC_W=$(mktemp -d "/tmp/${1:-mcast}.XXXXXX") || exit 1
  trap '_mc_cleanup; trap - EXIT' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# mc_init_lab NAME — mc_init, plus root and the lab's tools (else SKIP), and
# lab.sh's trap, which runs our cleanup before it tears the lab down.
mc_init_lab() {
  [ -x "$MLCAST" ] || { echo "SKIP: $MLCAST not built"; exit 77; }
  lab_require_root
  lab_require_cmds python3 nft tc sha256sum
  MC_W=$(mktemp -d "/tmp/${1:-mcast}.XXXXXX") || exit 1
  lab_on_exit _mc_cleanup
  lab_trap
}

# _mc_cleanup — ends every process started by mc_start (by PID: TERM, then
# KILL after up to 3 s) and removes the temp dir.
_mc_cleanup() {
  local t pid live i
  for t in "${!MC_PID[@]}"; do
    pid=${MC_PID[$t]}
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for ((i = 0; i < 30; i++)); do
    live=0
    for t in "${!MC_PID[@]}"; do kill -0 "${MC_PID[$t]}" 2>/dev/null && live=1; done
    [ "$live" = 0 ] && break
    sleep 0.1
  done
  for t in "${!MC_PID[@]}"; do
    pid=${MC_PID[$t]}
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  MC_PID=()
  if [ -n "$MC_W" ] && [ -d "$MC_W" ]; then
    if [ "${MC_KEEP:-0}" = 1 ]; then
      echo "# kept $MC_W" >&2
    else
      rm -rf "$MC_W"
    fi
  fi
}

# mc_image FILE MIB [CHUNK...] — writes MIB MiB of random data to FILE, then
# zeroes the 1 MiB chunks listed (single indexes or ranges A-B).
mc_image() {
  local f=$1 mib=$2 z a b
  shift 2
  head -c $((mib * 1048576)) /dev/urandom >"$f" || return 1
  for z in "$@"; do
    case $z in *-*) a=${z%-*} b=${z#*-} ;; *) a=$z b=$z ;; esac
    dd if=/dev/zero of="$f" bs=1M seek="$a" count=$((b - a + 1)) conv=notrunc status=none || return 1
  done
}

# mc_put_random FILE CHUNK [N] — overwrites N (default 1) 1 MiB chunks of
# FILE from CHUNK on with new random data.
mc_put_random() {
  head -c $((${3:-1} * 1048576)) /dev/urandom |
    dd of="$1" bs=1M seek="$2" conv=notrunc iflag=fullblock status=none
}

# mc_prepare IMAGE STORE [OPTS...] — mlcast prepare, quietly; dies on failure.
mc_prepare() {
  local img=$1 store=$2
  shift 2
  "$MLCAST" prepare --quiet "$@" "$img" "$store" || die "mlcast prepare $img failed"
}

# mc_sha FILE — prints FILE's SHA-256 (cached by path, size and mtime).
declare -A MC_SHA=()
mc_sha() {
  local k
  k="$1|$(stat -c '%s|%Y.%y' "$1" 2>/dev/null)" || return 1
  [ -n "${MC_SHA[$k]:-}" ] || MC_SHA[$k]=$(sha256sum "$1" | cut -d' ' -f1)
  echo "${MC_SHA[$k]}"
}

# mc_start TAG HOST CMD... — runs CMD in HOST's namespace in the background,
# stdout to $MC_W/TAG.json, stderr to $MC_W/TAG.err. A TAG used before (a
# restart) keeps its earlier logs as TAG.json.1 etc.
mc_start() {
  local tag=$1 host=$2 n=1
  shift 2
  if [ -e "$MC_W/$tag.json" ]; then
    while [ -e "$MC_W/$tag.json.$n" ]; do n=$((n + 1)); done
    mv "$MC_W/$tag.json" "$MC_W/$tag.json.$n"
    mv "$MC_W/$tag.err" "$MC_W/$tag.err.$n" 2>/dev/null
  fi
  # Not through lab_exec: a shell function run with & is a forked subshell,
  # so $! would be that subshell's PID, not the program's. A simple command
  # run with & is exec'ed in the child, and so is the program by ip netns exec.
  ip netns exec "$(lab_ns "$host")" "$@" >"$MC_W/$tag.json" 2>"$MC_W/$tag.err" &
  MC_PID[$tag]=$!
  unset "MC_RC[$tag]"
}

# mc_rx_start TAG HOST [OPTS...] — starts `mlcast receive --json --name TAG
# -o $MC_W/TAG.out OPTS` on HOST (with OPTS last, a later -o wins).
mc_rx_start() {
  local tag=$1 host=$2
  shift 2
  mc_start "$tag" "$host" "$MLCAST" receive --json --name "$tag" -o "$MC_W/$tag.out" "$@"
}

# mc_send_start TAG HOST STORE [OPTS...] — starts `mlcast send --json OPTS STORE`.
mc_send_start() {
  local tag=$1 host=$2 store=$3
  shift 3
  mc_start "$tag" "$host" "$MLCAST" send --json "$@" "$store"
}

# mc_running TAG — succeeds while TAG's process runs.
mc_running() {
  local pid=${MC_PID[$1]:-}
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie not yet reaped by the shell has ended too.
  [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# mc_wait TAG TIMEOUT_S — waits for TAG's process; its exit status goes to
# MC_RC[TAG] and is returned. Past TIMEOUT_S (a safety limit) the process is
# killed, a failure is recorded and 124 returned.
mc_wait() {
  local tag=$1 t=$2 pid=${MC_PID[$1]:-} rc
  [ -n "$pid" ] || { bad "mc_wait: no process '$tag'"; return 1; }
  if ! lab_wait "$t" _mc_not_running "$tag"; then
    bad "$tag still running after ${t} s (safety limit): killed"
    kill -TERM "$pid" 2>/dev/null
    lab_wait 3 _mc_not_running "$tag" || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "MC_PID[$tag]"
    MC_RC[$tag]=124
    return 124
  fi
  wait "$pid"
  rc=$?
  unset "MC_PID[$tag]"
  MC_RC[$tag]=$rc
  return "$rc"
}
_mc_not_running() { ! mc_running "$1"; }

# mc_kill TAG [SIGNAL] — sends SIGNAL (default TERM) to TAG and reaps it.
mc_kill() {
  local pid=${MC_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill "-${2:-TERM}" "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  MC_RC[$1]=$?
  unset "MC_PID[$1]"
}

_MC_PY='
import json, sys
path, expr, mode = sys.argv[1], sys.argv[2], sys.argv[3]
objs = []
try:
    with open(path, errors="replace") as f:
        lines = f.read().split("\n")
except OSError:
    sys.exit(2)
if mode == "last":
    lines = [l for l in lines if l.strip()][-1:]
if mode == "all":
    L = []
    for l in lines:
        try:
            o = json.loads(l)
        except ValueError:
            continue
        if isinstance(o, dict):
            L.append(o)
    lines = []
    objs.append(L)
for l in reversed(lines):
    try:
        o = json.loads(l)
    except ValueError:
        continue
    if isinstance(o, dict):
        objs.append(o)
        break
if not objs:
    sys.exit(2)
o = objs[0]
try:
    v = eval(expr, {"r": o, "p": o, "L": o, "json": json})
except Exception as e:
    sys.stderr.write("mc_json: %s: %r\n" % (expr, e))
    sys.exit(3)
if isinstance(v, bool):
    print("true" if v else "false")
elif isinstance(v, (dict, list)):
    print(json.dumps(v))
elif v is None:
    print("null")
else:
    print(v)
'

# mc_json FILE EXPR — EXPR evaluated with r = the JSON object on FILE's last
# non-empty line. Fails (status 2) when that line is not JSON.
mc_json() { python3 -c "$_MC_PY" "$1" "$2" last; }

# mc_jprog FILE EXPR — like mc_json, with p = the last complete JSON line.
mc_jprog() { python3 -c "$_MC_PY" "$1" "$2" any 2>/dev/null; }

# mc_jall FILE EXPR — EXPR with L = the list of every JSON line of FILE.
mc_jall() { python3 -c "$_MC_PY" "$1" "$2" all; }

# mc_true FILE EXPR — succeeds when EXPR on the last progress line is true.
mc_true() { [ "$(mc_jprog "$1" "$2")" = true ]; }

# mc_wait_progress TAG TIMEOUT_S EXPR — waits until EXPR (Python, p = TAG's
# last JSON line) holds; fails early when TAG ends first.
mc_wait_progress() {
  local tag=$1 t=$2 expr=$3
  lab_wait "$t" _mc_progress_or_gone "$tag" "$expr" && mc_true "$MC_W/$tag.json" "$expr"
}
_mc_progress_or_gone() { mc_true "$MC_W/$1.json" "$2" || ! mc_running "$1"; }

# mc_field TAG KEY — KEY of the result line of TAG's log.
mc_field() { mc_json "$MC_W/$1.json" "r.get('$2')"; }

# mc_rx_ok TAG IMAGE [OUTPUT] — checks one finished receiver: exit 0, its
# last JSON line is an ok result, OUTPUT (default $MC_W/TAG.out) is
# byte-identical to IMAGE, and no .mlcast-part or journal is left.
mc_rx_ok() {
  local tag=$1 img=$2 out=${3:-$MC_W/$1.out} rc res want got
  rc=${MC_RC[$tag]:-none}
  res=$(mc_json "$MC_W/$tag.json" 'r.get("event") == "result" and r.get("ok") is True')
  mc_sha "$img" >/dev/null # fill the cache in this shell, not in a subshell
  want=$(mc_sha "$img")
  got=$( [ -f "$out" ] && sha256sum "$out" | cut -d' ' -f1)
  if [ "$rc" = 0 ] && [ "$res" = true ] && [ "$got" = "$want" ] &&
    [ ! -e "$out.mlcast-part" ] && [ ! -e "$out.mlcast-jrnl" ]; then
    ok "$tag: exit 0, result ok, output identical ($(mc_field "$tag" chunks_done) chunks received in $(mc_field "$tag" elapsed_s) s)"
    return 0
  fi
  bad "$tag: exit $rc, result ok=$res, sha ${got:-<no output>} vs $want$( [ -e "$out.mlcast-part" ] && echo ', .mlcast-part left')"
  mc_show "$tag"
  return 1
}

# mc_send_ok TAG N — the sender exited 0, its result is ok and lists N
# receivers, all done.
mc_send_ok() {
  local tag=$1 n=$2 rc=${MC_RC[$1]:-none} res
  res=$(mc_json "$MC_W/$tag.json" \
    "r.get('event') == 'result' and r.get('ok') is True and len(r['receivers']) == $n and all(x['state'] == 'done' for x in r['receivers'])")
  if [ "$rc" = 0 ] && [ "$res" = true ]; then
    ok "$tag: exit 0, $n receivers done in $(mc_field "$tag" elapsed_s) s"
    return 0
  fi
  bad "$tag: exit $rc, expected ok with $n receivers all done"
  mc_show "$tag"
  return 1
}

# mc_show TAG — prints the tail of TAG's logs, for a failure's diagnosis.
mc_show() {
  echo "--- $1.json (last 3 lines)"
  tail -n 3 "$MC_W/$1.json" 2>/dev/null | cut -c1-1500
  echo "--- $1.err (last 10 lines)"
  tail -n 10 "$MC_W/$1.err" 2>/dev/null
  echo "---"
}

# mc_no_crash TAG — the exit status of TAG is not death by a signal.
mc_no_crash() {
  local rc=${MC_RC[$1]:-0}
  [ "$rc" -lt 128 ] || [ "$rc" = 124 ]
}

# mc_rx_line TAG — a one-line summary of a receiver's result, for the log.
mc_rx_line() {
  mc_json "$MC_W/$1.json" '"%s: ok=%s %.2f s chunks_done=%s/%s seeded=%s rx_pkts=%s dup=%s bad=%s forged=%s hash_failures=%s nacks=%s" % ("'"$1"'", r.get("ok"), r.get("elapsed_s", 0), r.get("chunks_done"), r.get("chunks_needed"), r.get("seeded_chunks"), r.get("rx_pkts"), r.get("dup_pkts"), r.get("bad_pkts"), r.get("forged_pkts"), r.get("hash_failures"), r.get("nacks_sent"))'
}

# mc_send_line TAG — a one-line summary of a sender's result.
mc_send_line() {
  mc_json "$MC_W/$1.json" '"%s: ok=%s %.2f s wire=%.1f MiB data_pkts=%s parity_pkts=%s control_pkts=%s bad=%s forged=%s; " % ("'"$1"'", r.get("ok"), r.get("elapsed_s", 0), r.get("wire_bytes", 0) / 1048576, r.get("data_pkts"), r.get("parity_pkts"), r.get("control_pkts"), r.get("bad_pkts"), r.get("forged_pkts")) + ", ".join("%s %s %.2f s%s" % (x["name"], x["state"], x["finished_s"], (" (" + x["reason"] + ")") if "reason" in x else "") for x in r.get("receivers", []))'
}

# mc_jr_records OUTPUT — prints how many chunk records OUTPUT's receive
# journal (OUTPUT.mlcast-jrnl: a 48-byte header, then 8 bytes per verified
# chunk) holds on disk now; 0 when there is none.
mc_jr_records() {
  local s
  s=$(stat -c %s "$1.mlcast-jrnl" 2>/dev/null) || { echo 0; return 0; }
  [ "$s" -gt 48 ] && echo $(((s - 48) / 8)) || echo 0
}
