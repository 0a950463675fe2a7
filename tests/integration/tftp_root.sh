#!/usr/bin/env bash
# mlserver started as root drops root after binding ([server] user,
# docs/server.md): inside a network namespace (lab.sh, names carry the PID)
# it binds TFTP on port 69 and HTTP, then runs as `nobody`. Checks: every
# thread's real, effective, saved and file-system uid and gid in /proc are
# nobody's; TFTP on port 69 (tftp-hpa, atftp with windowsize) and the HTTP
# API (a login, which writes to the database) still work from another host;
# what the first start created in the data directory belongs to nobody and a
# restart over it works; an unknown user, a root-owned data directory and a
# group without a user are clear start-up errors; root without a user on
# port 69 logs a warning.
# Env: MLBUILD. Exit 0 pass, 1 fail, 77 skip (not root, no netns or clients).
set -u
MLBUILD=${MLBUILD:-$(pwd)}
SERVER="$MLBUILD/src/server/mlserver"
[ -x "$SERVER" ] || { echo "SKIP: $SERVER not built"; exit 77; }
: "${LAB:=mlt$$}"
# shellcheck source=tests/integration/lab.sh
source "$(dirname "$0")/lab.sh"
lab_require_root
lab_require_cmds tftp atftp curl python3 cmp
id nobody >/dev/null 2>&1 || { echo "SKIP: no user nobody"; exit 77; }

W=$(mktemp -d /tmp/mltftproot.XXXXXX)
# nobody must reach the data directory and the TFTP root inside W.
chmod 0755 "$W"
SRV_PID=
stop_server() {
	if [ -n "$SRV_PID" ]; then
		kill "$SRV_PID" 2>/dev/null
		wait "$SRV_PID" 2>/dev/null
	fi
	SRV_PID=
}
lab_on_exit 'stop_server; rm -rf "$W"'
lab_trap
# shellcheck source=tests/integration/checks.sh
source "$(dirname "$0")/checks.sh"

lab_up 1 0 0 || { echo "FAIL: cannot build the lab"; exit 1; }
SRV_IP=$(lab_ip srv)
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
ROOT=$W/tftproot
mkdir -p "$ROOT" "$W/out"
head -c $((3 << 20)) /dev/urandom >"$ROOT/kernel.bin"
chmod -R a+rX "$ROOT"
echo "admin-password-123" >"$W/pw"

# start_server LOG ARGS... — mlserver in the srv namespace (ip netns exec
# keeps the PID), waiting for its "running as" line or its exit.
start_server() {
	local log=$1
	shift
	rm -f "$W/port"
	ip netns exec "$(lab_ns srv)" "$SERVER" --listen "$SRV_IP:0" --no-tls --port-file "$W/port" \
		--admin-password-file "$W/pw" --set tftp.enabled=yes --set "tftp.listen=$SRV_IP:69" \
		--set "tftp.root=$ROOT" "$@" >"$log" 2>&1 &
	SRV_PID=$!
	for _ in $(seq 100); do
		grep -qE "running as|stopping" "$log" && break
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
}

# ids_dropped PID — every thread's Uid and Gid lines hold only nobody's ids.
ids_dropped() {
	local t n=0
	for t in /proc/"$1"/task/*; do
		awk -v u="$NOBODY_UID" -v g="$NOBODY_GID" '
			/^Uid:/ { for (i = 2; i <= 5; i++) if ($i != u) bad = 1; su = 1 }
			/^Gid:/ { for (i = 2; i <= 5; i++) if ($i != g) bad = 1; sg = 1 }
			/^Groups:/ { for (i = 2; i <= NF; i++) if ($i == 0) bad = 1 }
			END { exit (bad || !su || !sg) }' "$t/status" || return 1
		n=$((n + 1))
	done
	echo "$n threads"
	[ "$n" -gt 0 ]
}

# 1. The data directory does not exist yet: it is created for nobody.
DATA=$W/data
start_server "$W/run1.log" --data-dir "$DATA" --set server.user=nobody
if grep -q "running as nobody (uid $NOBODY_UID" "$W/run1.log"; then
	pass "logs 'running as nobody (uid $NOBODY_UID ...)'"
else fail "no 'running as nobody' line"; cat "$W/run1.log"; fi
if r=$(ids_dropped "$SRV_PID"); then pass "/proc: every thread runs as nobody ($r)"
else fail "/proc: a thread kept root"; grep -E '^(Uid|Gid|Groups)' /proc/"$SRV_PID"/status; fi
cd "$W/out" || exit 1
lab_exec c1 timeout 60 tftp -m binary "$SRV_IP" 69 -c get kernel.bin got1 >/dev/null 2>&1
cmp -s "$ROOT/kernel.bin" got1 && pass "tftp-hpa from c1 on port 69" || fail "tftp-hpa on port 69"
lab_exec c1 timeout 60 atftp --option "blksize 1468" --option "windowsize 8" \
	-g -r kernel.bin -l got2 "$SRV_IP" 69 >/dev/null 2>&1
cmp -s "$ROOT/kernel.bin" got2 && pass "atftp windowsize 8 from c1 on port 69" || fail "atftp on port 69"
HPORT=$(cat "$W/port" 2>/dev/null)
if lab_exec c1 curl -s -m 10 "http://$SRV_IP:$HPORT/api/v1/health" | grep -q '"status":"ok"'; then
	pass "HTTP API health after the drop"
else fail "HTTP API health"; fi
# A login writes its session to the database.
if lab_exec c1 curl -s -m 10 -H 'Content-Type: application/json' \
	-d '{"username":"admin","password":"admin-password-123"}' \
	"http://$SRV_IP:$HPORT/api/v1/login" | grep -q '"token"'; then
	pass "HTTP login (a database write) after the drop"
else fail "HTTP login after the drop"; fi
stop_server
if [ "$(stat -c %U "$DATA")" = nobody ] && [ -z "$(find "$DATA" -path "$DATA/tftp" -prune -o ! -user nobody -print)" ]; then
	pass "the data directory and everything start-up created in it belong to nobody"
else fail "root-owned files in the data directory"; find "$DATA" ! -user nobody -ls; fi

# 2. A restart over the existing directory.
start_server "$W/run2.log" --data-dir "$DATA" --set server.user=nobody
grep -q "running as nobody" "$W/run2.log" && pass "restart as nobody" || { fail "restart"; cat "$W/run2.log"; }
ids_dropped "$SRV_PID" >/dev/null && pass "restart: ids dropped" || fail "restart: ids"
stop_server

# 3. Start-up errors: exit 1 with a clear last line.
# expect_error WHAT PATTERN ARGS...
expect_error() {
	local what=$1 pat=$2 rc
	shift 2
	ip netns exec "$(lab_ns srv)" timeout 20 "$SERVER" --listen "$SRV_IP:0" --no-tls "$@" >"$W/err.log" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && tail -1 "$W/err.log" | grep -q "$pat"; then pass "$what: exit 1, '$(tail -1 "$W/err.log" | cut -c1-90)...'"
	else fail "$what: exit $rc"; cat "$W/err.log"; fi
}
expect_error "unknown user" "no user 'mlnosuch$$' on this system" --data-dir "$DATA" --set "server.user=mlnosuch$$"
expect_error "unknown user, --check-config" "no user 'mlnosuch$$'" --set "server.user=mlnosuch$$" --check-config
mkdir -p "$W/rootdata"
expect_error "root-owned data directory" "chown -R nobody: $W/rootdata" --data-dir "$W/rootdata" --set server.user=nobody
touch "$DATA/stray" # a file root left in the user's directory
expect_error "root-owned file in the data directory" "$DATA/stray belongs to uid 0" --data-dir "$DATA" --set server.user=nobody
rm -f "$DATA/stray"
expect_error "group without user" "group is set but user is empty" --data-dir "$DATA" --set server.group=nogroup
expect_error "root as user" "is root; name an unprivileged user" --data-dir "$DATA" --set server.user=root

# 4. Root without a user keeps root, and says so.
start_server "$W/run3.log" --data-dir "$W/rootdata"
for _ in $(seq 50); do grep -q "tftp: serving" "$W/run3.log" && break; sleep 0.1; done
sleep 0.3
grep -q "warn: running as root after binding port 69: set \[server\] user" "$W/run3.log" &&
	pass "root without user on port 69: warning" || { fail "no warning"; cat "$W/run3.log"; }
stop_server

if [ "$FAILS" -ne 0 ]; then
	echo "FAIL: $FAILS"
	exit 1
fi
echo "PASS"
