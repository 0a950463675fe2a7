#!/usr/bin/env bash
# mlserver's read-only TFTP server (docs/tftp.md) against real clients on
# 127.0.0.1 and a free high port, no root needed: tftp-hpa's tftp, atftp
# (blksize, tsize, windowsize options) and curl fetch files of awkward sizes
# (0 bytes, exact multiples of the block size, > 32 MiB for the block-number
# roll-over at blksize 512) and every copy is compared with cmp; paths out of
# the root ('..', absolute, a symbolic link leading out), writes and missing
# files are refused with the right TFTP error; malformed and oversized raw
# requests get an ERROR or nothing, and the server still serves afterwards;
# an unanswered transfer is retransmitted with back-off, then dropped.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (no mlserver or clients).
set -u
MLBUILD=${MLBUILD:-$(pwd)}
SERVER="$MLBUILD/src/server/mlserver"
[ -x "$SERVER" ] || { echo "SKIP: $SERVER not built"; exit 77; }
missing=()
for c in tftp atftp curl; do command -v "$c" >/dev/null || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q tftp-hpa atftp curl >/dev/null 2>&1
	missing=()
	for c in tftp atftp curl; do command -v "$c" >/dev/null || missing+=("$c"); done
fi
[ ${#missing[@]} -eq 0 ] || { echo "SKIP: missing ${missing[*]} (scripts/install-deps.sh)"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

W=$(mktemp -d /tmp/mltftp.XXXXXX)
SRV_PID=
cleanup() {
	[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=tests/integration/checks.sh
source "$(dirname "$0")/checks.sh"

PORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ROOT=$W/root
mkdir -p "$ROOT/sub" "$W/data" "$W/out"
head -c 3000 /dev/urandom >"$ROOT/small.bin"
head -c 2048 /dev/urandom >"$ROOT/b512x4.bin"
head -c $((1468 * 3)) /dev/urandom >"$ROOT/b1468x3.bin"
head -c 1024 /dev/urandom >"$ROOT/sub/nested.bin"
: >"$ROOT/empty.bin"
# 33 MiB: 67584 blocks of 512, past block 65535.
head -c $((33 << 20)) /dev/urandom >"$ROOT/big.bin"
echo secret >"$W/outside.txt"
ln -s "$W/outside.txt" "$ROOT/evil_abs"
ln -s ../outside.txt "$ROOT/evil_rel"
ln -s small.bin "$ROOT/good_link"
mkdir -p "$ROOT/dir"

"$SERVER" --data-dir "$W/data" --listen 127.0.0.1:0 --no-tls --log-level debug \
	--set tftp.enabled=yes --set "tftp.listen=127.0.0.1:$PORT" --set "tftp.root=$ROOT" \
	--set tftp.timeout=200ms --set tftp.retries=2 >"$W/server.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 50); do grep -q "tftp: serving" "$W/server.log" && break; sleep 0.1; done
grep -q "tftp: serving" "$W/server.log" || { cat "$W/server.log"; echo "FAIL: server did not start"; exit 1; }

# fetch NAME CLIENT ARGS... — fetches into out/, compares with root/NAME.
check_copy() {
	local what=$1 name=$2 out=$3
	if cmp -s "$ROOT/$name" "$out"; then pass "$what $name"; else fail "$what $name (copy differs or missing)"; fi
	rm -f "$out"
}
cd "$W/out" || exit 1
for f in small.bin b512x4.bin b1468x3.bin empty.bin sub/nested.bin good_link; do
	timeout 30 tftp -m binary 127.0.0.1 "$PORT" -c get "$f" got >/dev/null 2>&1
	check_copy "tftp-hpa" "$f" got
	timeout 30 tftp -v -m binary 127.0.0.1 "$PORT" -c get "/$f" got >/dev/null 2>&1
	check_copy "tftp-hpa -v, leading /" "$f" got
	timeout 30 atftp --option "blksize 1468" --option "tsize 0" --option "windowsize 8" \
		-g -r "$f" -l got 127.0.0.1 "$PORT" >/dev/null 2>&1
	check_copy "atftp blksize 1468 tsize windowsize 8" "$f" got
	timeout 30 atftp -g -r "$f" -l got 127.0.0.1 "$PORT" >/dev/null 2>&1
	check_copy "atftp" "$f" got
	# curl creates no output file for an empty transfer: touch after success.
	timeout 30 curl -s -o got "tftp://127.0.0.1:$PORT/$f" && touch got
	check_copy "curl" "$f" got
	timeout 30 curl -s --tftp-blksize 1468 -o got "tftp://127.0.0.1:$PORT/$f" && touch got
	check_copy "curl --tftp-blksize 1468" "$f" got
done
# Roll-over: 67584 blocks of 512 (default blksize), then with windows.
timeout 120 tftp -m binary 127.0.0.1 "$PORT" -c get big.bin got >/dev/null 2>&1
check_copy "tftp-hpa roll-over" big.bin got
timeout 120 atftp --option "tsize 0" --option "windowsize 8" -g -r big.bin -l got 127.0.0.1 "$PORT" >/dev/null 2>&1
check_copy "atftp roll-over windowsize 8" big.bin got
timeout 120 curl -s -o got "tftp://127.0.0.1:$PORT/big.bin"
check_copy "curl roll-over" big.bin got

# Refusals through a real client: nothing is written, the exit status fails.
if timeout 20 tftp -m binary 127.0.0.1 "$PORT" -c get ../outside.txt got 2>&1 | grep -q "Error code 2"; then
	pass "tftp-hpa ../ refused (error 2)"
else fail "tftp-hpa ../ not refused with error 2"; fi
rm -f got
if timeout 20 tftp -m binary 127.0.0.1 "$PORT" -c get nope.bin got 2>&1 | grep -q "Error code 1"; then
	pass "tftp-hpa missing file (error 1)"
else fail "tftp-hpa missing file: no error 1"; fi
rm -f got
echo hello >up.txt
if timeout 20 tftp -m binary 127.0.0.1 "$PORT" -c put up.txt up.txt 2>&1 | grep -q "Error code 2"; then
	pass "tftp-hpa put refused (error 2)"
else fail "tftp-hpa put not refused"; fi
[ ! -e "$ROOT/up.txt" ] || fail "put created a file"
if timeout 20 curl -s -o got "tftp://127.0.0.1:$PORT/evil_abs"; then fail "curl got evil_abs"; else pass "curl evil_abs refused"; fi
rm -f got

# Raw requests (python3, standard library): error codes, OACK contents,
# malformed input, retransmission and drop.
PORT=$PORT ROOT=$ROOT LOG=$W/server.log $PY - <<'PYEOF' || FAILS=$((FAILS + 1))
import os, socket, struct, sys, time
port = int(os.environ["PORT"]); root = os.environ["ROOT"]
fails = 0
def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails += 1
def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.5)
    return s
def rrq(name, mode=b"octet", opts=()):
    p = struct.pack("!H", 1) + name + b"\0" + mode + b"\0"
    for k, v in opts:
        p += k + b"\0" + v + b"\0"
    return p
def first_reply(pkt):
    s = sock()
    s.sendto(pkt, ("127.0.0.1", port))
    try:
        data, addr = s.recvfrom(70000)
    except socket.timeout:
        return None, None, s
    return data, addr, s
def err_code(pkt):
    data, _, s = first_reply(pkt)
    s.close()
    if data is None:
        return None
    op = struct.unpack("!H", data[:2])[0]
    return struct.unpack("!H", data[2:4])[0] if op == 5 else ("op", op)

check(err_code(rrq(b"../outside.txt")) == 2, "'../outside.txt' -> error 2")
check(err_code(rrq(b"sub/../../outside.txt")) == 2, "'sub/../../outside.txt' -> error 2")
check(err_code(rrq(b"evil_abs")) == 2, "symlink to an absolute path outside -> error 2")
check(err_code(rrq(b"evil_rel")) == 2, "symlink '../outside.txt' -> error 2")
check(err_code(rrq(b"/etc/passwd")) in (1, 2), "/etc/passwd -> error 1 or 2 (not served)")
check(err_code(rrq(b"missing.bin")) == 1, "missing file -> error 1")
check(err_code(rrq(b"dir")) == 2, "directory -> error 2")
check(err_code(struct.pack("!H", 2) + b"x\0octet\0") == 2, "WRQ -> error 2")
check(err_code(rrq(b"small.bin", b"mail")) == 4, "mail mode -> error 4")
check(err_code(rrq(b"small.bin", opts=[(b"blksize", b"7")])) == 8, "blksize 7 -> error 8")
check(err_code(rrq(b"small.bin", opts=[(b"blksize", b"abc")])) == 8, "blksize abc -> error 8")
check(err_code(rrq(b"small.bin", opts=[(b"timeout", b"0")])) == 8, "timeout 0 -> error 8")
check(err_code(rrq(b"small.bin", opts=[(b"tsize", b"0"), (b"TSIZE", b"0")])) == 8, "duplicate option -> error 8")
check(err_code(rrq(b"")) == 4, "empty file name -> error 4")
check(err_code(struct.pack("!H", 1) + b"small.bin") == 4, "no NUL -> error 4")
check(err_code(rrq(b"a" * 600)) == 4, "oversized request -> error 4")
for junk in [b"", b"\0", b"\0\1", b"\0\3\0\1abc", b"\0\4\0\0", b"\xff" * 1500, os.urandom(300)]:
    r = err_code(junk)
    check(r is None or isinstance(r, int), "junk %r... -> ERROR or nothing" % junk[:6])

# OACK: tsize is the size, blksize clamped to 1468, windowsize to 64, unknown ignored.
data, addr, s = first_reply(rrq(b"big.bin", opts=[(b"blksize", b"65464"), (b"tsize", b"0"),
                                                  (b"windowsize", b"1000"), (b"x-foo", b"1")]))
check(data is not None and data[:2] == b"\0\6", "options -> OACK")
if data:
    f = data[2:].split(b"\0")[:-1]
    o = dict(zip(f[0::2], f[1::2]))
    check(o == {b"blksize": b"1468", b"tsize": str(os.path.getsize(root + "/big.bin")).encode(),
                b"windowsize": b"64"}, "OACK values %r" % o)
    check(addr[1] != port, "the transfer comes from its own port")
    s.sendto(struct.pack("!HH", 5, 0) + b"bye\0", addr)  # the client gives up
s.close()

# No options: no OACK, DATA 1 at once; unanswered, it is sent 1 + retries (2)
# times with back-off (200, 400, 800 ms), then the transfer is dropped.
data, addr, s = first_reply(rrq(b"small.bin"))
check(data is not None and data[:4] == b"\0\3\0\1", "no options -> DATA 1 without OACK")
times = [time.monotonic()]
s.settimeout(2.5)
while True:
    try:
        d, a = s.recvfrom(70000)
    except socket.timeout:
        break
    if d[:4] == b"\0\3\0\1":
        times.append(time.monotonic())
gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
check(len(times) == 3 and gaps[1] > gaps[0] * 1.5, "retransmitted twice with back-off, then dropped (gaps %r)" % gaps)
# A late ACK to the dropped transfer gets nothing back.
s.sendto(struct.pack("!HH", 4, 1), addr)
s.settimeout(0.5)
try:
    s.recvfrom(70000); late = True
except (socket.timeout, ConnectionRefusedError):
    late = False
check(not late, "a dropped transfer stays dropped")
s.close()

# Windowed transfer by hand: windowsize 4, ACK only every 4th block.
data, addr, s = first_reply(rrq(b"b1468x3.bin", opts=[(b"windowsize", b"4"), (b"blksize", b"512")]))
got = b""
s.sendto(struct.pack("!HH", 4, 0), addr)
blocks = []
while True:
    try:
        d, a = s.recvfrom(70000)
    except socket.timeout:
        break
    blk = struct.unpack("!H", d[2:4])[0]
    if blk != len(blocks) + 1:
        continue
    blocks.append(d[4:])
    if len(d) - 4 < 512:
        s.sendto(struct.pack("!HH", 4, blk), addr)
        break
    if blk % 4 == 0:
        s.sendto(struct.pack("!HH", 4, blk), addr)
s.close()
check(b"".join(blocks) == open(root + "/b1468x3.bin", "rb").read(), "windowsize 4 by hand: %d blocks" % len(blocks))

# Clients that close their port: the server's next send meets the ICMP
# refusal. One leaves with every block (its final ACK unsent): the log says
# the last block went out; one leaves midway: the log says aborted.
def leave(nblocks):
    data, addr, s = first_reply(rrq(b"small.bin", opts=[(b"windowsize", b"4"), (b"blksize", b"512")]))
    me = s.getsockname()[1]
    s.sendto(struct.pack("!HH", 4, 0), addr)
    got = 0
    while got < nblocks:
        try:
            d, a = s.recvfrom(70000)
        except socket.timeout:
            break
        got = struct.unpack("!H", d[2:4])[0]
        if got == 4 and nblocks > 4:
            s.sendto(struct.pack("!HH", 4, 4), addr)
    s.close()
    return me, got
def log_line(port, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in open(os.environ["LOG"], errors="replace"):
            if ":%d: small.bin" % port in line and ("aborted" in line or "dropped" in line):
                return line.strip()
        time.sleep(0.1)
    return ""
me, got = leave(6)
line = log_line(me)
check(got == 6 and "no ACK of the last block (aborted: Connection refused)" in line,
      "a client gone after the last block: logged as such (%r)" % line)
me, got = leave(2)
line = log_line(me)
check(got == 2 and "small.bin aborted: Connection refused" in line,
      "a client gone midway: aborted (%r)" % line)
sys.exit(1 if fails else 0)
PYEOF

# Still serving after all that.
timeout 30 tftp -m binary 127.0.0.1 "$PORT" -c get small.bin got >/dev/null 2>&1
check_copy "after hostile input, tftp-hpa" small.bin got
kill -0 "$SRV_PID" 2>/dev/null && pass "server alive" || fail "server died"
grep -q "tftp: .*refused" "$W/server.log" && pass "refusals logged" || fail "refusals not logged"

if [ "$FAILS" -ne 0 ]; then
	echo "--- server log (tail)"; tail -40 "$W/server.log"
	echo "FAIL: $FAILS"
	exit 1
fi
echo "PASS"
