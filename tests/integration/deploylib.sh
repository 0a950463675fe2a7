# shellcheck shell=bash
# deploylib.sh — a whole Microlinux site in network namespaces, for the
# end-to-end tests of deployment runs (tests/integration/deploy_*.sh) and
# `make demo`. Source it after lab.sh; do not run it.
#
#   dl_init                     # work dir, tool paths; call once
#   lab_up 4 1gbit 1            # the LAN (lab.sh): srv 10.99.0.1, c1..c4 10.99.0.11..
#   dl_sink                     # an SMTP sink (python3-aiosmtpd) in srv, port 2525
#   dl_server [CONFIG_LINES]    # mlserver in srv, with an admin token in $DL_TOKEN
#   dl_enroll_token             # an enrollment token in $DL_ETOKEN and $DL_W/enroll-token
#   dl_agent_start c1 pc1 [ARGS...]   # mlagent in host c1 as machine pc1
#   dl_wait_online pc1 pc2 ...  # until their agents are online
#   dl_image FILE NAME          # import a version; its id in $DL_VERSION, image in $DL_IMAGE
#   dl_deploy NAME VERSION TARGETS_JSON [OPTIONS_JSON]   # run id in $DL_RUN
#   dl_wait_run RUN [SECONDS]   # until the run ends and is reported; JSON in $DL_RUNJSON
#   dl_api METHOD PATH [JSON]   # the API's answer on stdout (curl in srv)
#
# Processes started here are killed by PID and their files removed on exit
# (through lab_on_exit). Everything runs inside the lab's namespaces.

# With DL_LOOPBACK=1 (the demo without root, inside its own user and
# network namespace) every "host" is this namespace, on 127.0.0.1 and lo.
DL_PORT=8443
DL_SMTP_PORT=2525
if [ "${DL_LOOPBACK:-0}" = 1 ]; then DL_ADDR=127.0.0.1 DL_IF=lo; else DL_ADDR=10.99.0.1 DL_IF=eth0; fi
DL_URL=https://$DL_ADDR:$DL_PORT
DL_PIDS=()

# dl_in HOST COMMAND... — runs COMMAND in HOST's namespace.
dl_in() {
  local host=$1; shift
  if [ "${DL_LOOPBACK:-0}" = 1 ]; then "$@"; else ip netns exec "$(lab_ns "$host")" "$@"; fi
}

dl_log() { printf '%s: %s\n' "${DL_NAME:-deploy}" "$*" >&2; }

# dl_require — a test's prerequisites (exit 77 = skipped): root, network
# namespaces, the tools, and Debian's python3 with aiosmtpd.
dl_require() {
  lab_require_root
  lab_require_cmds ip curl jq mkfs.ext4 sha256sum
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
    { echo "SKIP: needs /usr/bin/python3 with aiosmtpd (Debian: python3-aiosmtpd)"; exit 77; }
}

# Checks (checks.sh): check DESCRIPTION COMMAND... runs COMMAND and counts
# it; eq A B, le A B (numbers) and has TEXT NEEDLE are commands for it that
# say what differs; dl_summary prints the count and exits 1 (with the logs)
# when any check failed.
# shellcheck source=tests/integration/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
eq() { [ "$1" = "$2" ] || { echo "   got '$1', want '$2'" >&2; return 1; }; }
le() { [ "$1" -le "$2" ] || { echo "   $1 > $2" >&2; return 1; }; }
has() { grep -q -- "$2" <<<"$1" || { echo "   '$2' not in: ${1:0:400}" >&2; return 1; }; }
# dl_dump — the end of every log of the site.
dl_dump() {
  local f
  for f in "$DL_W"/*.log; do echo "---- $f"; tail -40 "$f"; done
}
dl_summary() {
  echo "$((CHECKS - FAILS))/$CHECKS checks passed"
  [ "$FAILS" = 0 ] || { dl_dump; exit 1; }
}

# dl_init — paths of the programs and a work directory removed on exit.
dl_init() {
  MLSERVER=$MLBUILD/src/server/mlserver
  MLAGENT=$MLBUILD/src/agent/mlagent
  MLCTL=$MLBUILD/src/cli/mlctl
  local p
  for p in "$MLSERVER" "$MLAGENT" "$MLCTL"; do
    [ -x "$p" ] || { echo "FAIL: $p is not built"; exit 1; }
  done
  DL_PY=/usr/bin/python3
  DL_W=$(mktemp -d "/tmp/mldeploy$$.XXXXXX")
  chmod 755 "$DL_W"
  # DL_KEEP=1 keeps the work directory (logs, stores) for a look afterwards.
  local rm="rm -rf '$DL_W'"
  [ "${DL_KEEP:-0}" = 1 ] && rm="echo 'kept $DL_W' >&2"
  if [ "${DL_LOOPBACK:-0}" = 1 ]; then
    trap "dl_stop_all; $rm" EXIT
  else
    lab_on_exit "dl_stop_all"
    lab_on_exit "$rm"
  fi
}

# dl_spawn NAME HOST COMMAND... — runs COMMAND in HOST's namespace in the
# background, output to $DL_W/NAME.log; its PID in $DL_PID.
dl_spawn() {
  local name=$1 host=$2; shift 2
  # Not through dl_in: $! must be the program's PID (ip netns exec execs it).
  if [ "${DL_LOOPBACK:-0}" = 1 ]; then
    "$@" >>"$DL_W/$name.log" 2>&1 &
  else
    ip netns exec "$(lab_ns "$host")" "$@" >>"$DL_W/$name.log" 2>&1 &
  fi
  DL_PID=$!
  DL_PIDS+=("$DL_PID")
  echo "$DL_PID" >"$DL_W/$name.pid"
}

dl_stop_all() {
  local p
  for p in "${DL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${DL_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  DL_PIDS=()
}

# dl_sink — the SMTP sink in srv on $DL_ADDR:2525, saving into $DL_W/mail.
dl_sink() {
  mkdir -p "$DL_W/mail"
  dl_spawn smtp srv env PYTHONPATH="$MLSRC/tests/integration" "$DL_PY" -m aiosmtpd -n \
    -l "$DL_ADDR:$DL_SMTP_PORT" -c smtp_sink.SaveRaw "$DL_W/mail"
  local i
  for i in $(seq 100); do
    dl_in srv bash -c "exec 3<>/dev/tcp/$DL_ADDR/$DL_SMTP_PORT" 2>/dev/null && return 0
    sleep 0.1
  done
  dl_log "the SMTP sink did not start: $(tail -3 "$DL_W/smtp.log")"
  return 1
}

# dl_mails — the number of messages the sink holds.
dl_mails() { find "$DL_W/mail" -name '*.eml' 2>/dev/null | wc -l; }

# dl_server [EXTRA_CONFIG] — starts mlserver in srv with its data in
# $DL_W/server, then logs in: $DL_TOKEN, $DL_FP (certificate fingerprint).
dl_server() {
  mkdir -p "$DL_W/server"
  printf 'admin-pw-%s\n' "$$" >"$DL_W/admin.pw"
  cat >"$DL_W/mlserver.conf" <<EOF
[server]
listen = $DL_ADDR:$DL_PORT
data_dir = $DL_W/server
[library]
import_roots = $DL_W${DL_IMPORT_ROOTS:+,$DL_IMPORT_ROOTS}
[scheduler]
tick = 200ms
[agents]
poll_wait = 10s
heartbeat = 5s
offline_after = 12s
[runner]
interface = $DL_IF
ready_wait = 20s
finish_wait = 60s
[wol]
interface = $DL_IF
[mail]
url = smtp://$DL_ADDR:$DL_SMTP_PORT
from = Microlinux <mlserver@lab.test>
starttls = off
${1:-}
EOF
  dl_server_start
  DL_TOKEN=$(dl_api POST /login "{\"username\": \"admin\", \"password\": \"admin-pw-$$\"}" | jq -r .token)
  [ -n "$DL_TOKEN" ] && [ "$DL_TOKEN" != null ] || { dl_log "cannot log in"; return 1; }
  DL_FP=$(dl_api GET /health | jq -r .tls_fingerprint)
}

# dl_server_start — (re)starts mlserver on its existing data; waits for /health.
dl_server_start() {
  rm -f "$DL_W/server.port"
  dl_spawn server srv "$MLSERVER" --config "$DL_W/mlserver.conf" \
    --admin-password-file "$DL_W/admin.pw" --port-file "$DL_W/server.port"
  DL_SERVER_PID=$DL_PID
  local i
  for i in $(seq 300); do
    [ -s "$DL_W/server.port" ] && return 0
    kill -0 "$DL_SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  dl_log "mlserver did not start: $(tail -5 "$DL_W/server.log")"
  return 1
}

# dl_api METHOD PATH [JSON] — the API's body on stdout; the status in $DL_STATUS... (file).
dl_api() {
  local method=$1 path=$2 body=${3:-}
  local args=(-sk -X "$method" -o "$DL_W/api.body" -w '%{http_code}' -H "Authorization: Bearer ${DL_TOKEN:-}")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  dl_in srv curl "${args[@]}" "$DL_URL/api/v1$path" >"$DL_W/api.status" || echo 000 >"$DL_W/api.status"
  cat "$DL_W/api.body"
}
dl_status() { cat "$DL_W/api.status"; }

# dl_ctl ARGS... — mlctl in srv, logged in as admin through the environment.
dl_ctl() {
  dl_in srv env MLCTL_SERVER="$DL_URL" MLCTL_TOKEN="$DL_TOKEN" MLCTL_FINGERPRINT="$DL_FP" \
    MLCTL_CONFIG="$DL_W/mlctl.conf" "$MLCTL" "$@"
}

# dl_enroll_token — $DL_ETOKEN, an enrollment token for the lab's agents, also in $DL_W/enroll-token.
dl_enroll_token() {
  DL_ETOKEN=$(dl_api POST /enroll-tokens '{"name": "lab"}' | jq -r .token)
  [ -n "$DL_ETOKEN" ] && [ "$DL_ETOKEN" != null ] || { dl_log "no enrollment token: $(cat "$DL_W/api.body")"; return 1; }
  # The agents read it from a file, as a site's would (--enroll-token-file).
  printf '%s\n' "$DL_ETOKEN" >"$DL_W/enroll-token"
}

# dl_agent_start HOST NAME [ARGS...] — mlagent in HOST as machine NAME, its
# data in $DL_W/agent-NAME (or --data-dir in ARGS), log $DL_W/agent-NAME.log.
dl_agent_start() {
  local host=$1 name=$2; shift 2
  mkdir -p "$DL_W/agent-$name"
  dl_spawn "agent-$name" "$host" "$MLAGENT" --server "$DL_URL" --data-dir "$DL_W/agent-$name" \
    --name "$name" --enroll-token-file "$DL_W/enroll-token" --fingerprint "$DL_FP" --interface "$DL_IF" \
    --config /dev/null "$@"
  eval "DL_AGENT_PID_${name//-/_}=$DL_PID"
}

# dl_agent_pid NAME — the PID of NAME's agent.
dl_agent_pid() { local v="DL_AGENT_PID_${1//-/_}"; echo "${!v}"; }

# dl_agent_kill NAME [SIGNAL] — stops NAME's agent and waits for it.
dl_agent_kill() {
  local pid; pid=$(dl_agent_pid "$1")
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# dl_machine_id NAME — the machine's id (empty when unknown).
dl_machine_id() { dl_api GET "/machines?limit=1000" | jq -r --arg n "$1" '.items[] | select(.name == $n) | .id'; }

# dl_wait_online SECONDS NAME... — until every NAME is an online agent.
dl_wait_online() {
  local secs=$1; shift
  local end=$((SECONDS + secs)) n
  while :; do
    local ok=1
    for n in "$@"; do
      dl_api GET /agents | jq -e --arg n "$n" '.items[] | select(.machine == $n and .online)' >/dev/null || ok=0
    done
    [ $ok = 1 ] && return 0
    [ $SECONDS -ge $end ] && { dl_log "agents not online after ${secs}s: $*"; return 1; }
    sleep 0.3
  done
}

# dl_wait_offline SECONDS NAME — until NAME's agent is no longer online.
dl_wait_offline() {
  local end=$((SECONDS + $1))
  while dl_api GET /agents | jq -e --arg n "$2" '.items[] | select(.machine == $n and .online)' >/dev/null; do
    [ $SECONDS -ge $end ] && { dl_log "$2 still online after $1 s"; return 1; }
    sleep 0.5
  done
}

# dl_image FILE NAME — imports FILE as a new version of image NAME (created
# when missing): $DL_IMAGE, $DL_VERSION.
dl_image() {
  local file=$1 name=$2
  DL_IMAGE=$(dl_api GET "/images?limit=1000" | jq -r --arg n "$name" '.items[] | select(.name == $n) | .id')
  if [ -z "$DL_IMAGE" ]; then
    DL_IMAGE=$(dl_api POST /images "{\"name\": \"$name\"}" | jq -r .id)
  fi
  DL_VERSION=$(dl_api POST "/images/$DL_IMAGE/versions" "{\"path\": \"$file\"}" | jq -r .id)
  [ -n "$DL_VERSION" ] && [ "$DL_VERSION" != null ] || { dl_log "import refused: $(cat "$DL_W/api.body")"; return 1; }
  local i st
  for i in $(seq 1200); do
    st=$(dl_api GET "/images/$DL_IMAGE/versions/$DL_VERSION" | jq -r .state)
    [ "$st" = ready ] && return 0
    [ "$st" = importing ] || { dl_log "import $st: $(cat "$DL_W/api.body")"; return 1; }
    sleep 0.1
  done
  return 1
}

# dl_deploy NAME VERSION TARGETS_JSON [OPTIONS_JSON] — a deployment that
# runs now; waits for its run: $DL_DEP, $DL_RUN.
dl_deploy() {
  local name=$1 version=$2 targets=$3 opts=${4:-'{}'}
  DL_DEP=$(dl_api POST /deployments "{\"name\": \"$name\", \"version_id\": $version, \"targets\": $targets, \"schedule\": {\"kind\": \"now\"}, \"options\": $opts}" | jq -r .id)
  [ -n "$DL_DEP" ] && [ "$DL_DEP" != null ] || { dl_log "deployment refused: $(cat "$DL_W/api.body")"; return 1; }
  local i
  for i in $(seq 100); do
    DL_RUN=$(dl_api GET "/runs?deployment=$DL_DEP" | jq -r '.items[0].id // empty')
    [ -n "$DL_RUN" ] && return 0
    sleep 0.1
  done
  dl_log "no run for deployment $DL_DEP"
  return 1
}

# dl_wait_run RUN [SECONDS] — until RUN has ended and its report is out: $DL_RUNJSON.
dl_wait_run() {
  local run=$1 secs=${2:-180} end
  end=$((SECONDS + secs))
  while :; do
    DL_RUNJSON=$(dl_api GET "/runs/$run")
    # An ended run is "reporting" until its mail's outcome is recorded.
    case $(jq -r '.state + " " + (.phase // "")' <<<"$DL_RUNJSON") in
      "done " | "failed " | "cancelled ") return 0 ;;
    esac
    [ $SECONDS -ge $end ] && { dl_log "run $run still $(jq -r .state <<<"$DL_RUNJSON") after ${secs}s"; return 1; }
    sleep 0.3
  done
}

# dl_target RUNJSON MACHINE FIELD — one field of one machine of a run.
dl_target() { jq -r --arg m "$2" ".targets[] | select(.machine == \$m) | .$3" <<<"$1"; }

# dl_active NAME IMAGE — the version id active in NAME's agent store (empty: none).
dl_active() {
  local l="$DL_W/agent-$1/images/$2/active"
  [ -L "$l" ] && readlink "$l" | sed 's/^v//'
}

# dl_make_image OUT SIZE_MB [RANDOM_MB] — an ext4 image holding copies of
# system files (about 17 MiB of programs and libraries) and RANDOM_MB of
# incompressible data (default 0), the rest free, as a small VM disk would be.
dl_make_image() {
  local out=$1 size=$2 rnd=${3:-0} root="$DL_W/imgroot" d
  rm -rf "$root"; mkdir -p "$root"
  for d in /usr/sbin /usr/lib/x86_64-linux-gnu/perl-base /usr/share/perl5; do
    [ -d "$d" ] && mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$d" 2>/dev/null || true
  done
  [ "$rnd" = 0 ] || head -c "${rnd}M" /dev/urandom >"$root/data.bin"
  mkfs.ext4 -q -F -L mltest -E root_owner=0:0 -d "$root" "$out" "${size}M" || return 1
  rm -rf "$root"
}

# dl_change_chunks IN OUT FIRST K — OUT is IN with the K 1-MiB chunks from
# chunk FIRST on overwritten with random bytes (a new version in which
# exactly K chunks differ).
dl_change_chunks() {
  cp --reflink=auto "$1" "$2" &&
    dd if=/dev/urandom of="$2" bs=1M seek="$3" count="$4" conv=notrunc status=none
}
