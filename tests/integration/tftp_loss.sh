#!/usr/bin/env bash
# mlserver's TFTP server over a lossy link (docs/tftp.md, "Testing"): the
# server and a client in two network namespaces (lab.sh, names carry the
# PID), with nftables dropping UDP at random in both directions (`numgen
# random`; this kernel has no netem): LOSS % arriving at the client (lab.sh's
# rule) and LOSS % arriving at the server (a rule of this test). At once,
# so the run stays short: tftp-hpa (blksize 512), atftp (blksize 1468,
# windowsize 1, 8 and 16) and curl (blksize 512 without options, blksize
# 1468 with its timeout option) fetch files of 256 KiB to 4 MiB
# and every copy is compared with cmp; two raw clients vanish in the middle
# of a transfer: one keeps its port but stops answering (the server must
# retransmit with back-off, then drop the transfer after `retries`), one
# closes its port (the ICMP error ends the transfer at once). The server log
# must hold no warning, error or sanitizer report, and no transfer may end
# early but the vanishing ones.
# Env: MLBUILD, LOSS (percent per direction, default 5).
# Exit 0 pass, 1 fail, 77 skip (not root, no netns, nft or clients).
set -u
MLBUILD=${MLBUILD:-$(pwd)}
SERVER="$MLBUILD/src/server/mlserver"
[ -x "$SERVER" ] || { echo "SKIP: $SERVER not built"; exit 77; }
: "${LAB:=mll$$}"
# shellcheck source=tests/integration/lab.sh
source "$(dirname "$0")/lab.sh"
lab_require_root
lab_require_cmds nft tftp atftp curl python3 cmp timeout
LOSS=${LOSS:-5}
RETRIES=7

W=$(mktemp -d /tmp/mltftploss.XXXXXX)
SRV_PID=
declare -a BG=()
cleanup() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "$SRV_PID" ]; then
		kill "$SRV_PID" 2>/dev/null
		wait "$SRV_PID" 2>/dev/null
	fi
	rm -rf "$W"
}
lab_on_exit cleanup
lab_trap
# shellcheck source=tests/integration/checks.sh
source "$(dirname "$0")/checks.sh"
T0=$SECONDS

lab_up 1 0 0 || { echo "FAIL: cannot build the lab"; exit 1; }
# LOSS % of the DATA and ACK packets (UDP payload opcode 3 or 4, at bit 64
# of the transport header) but those of block 0, in each direction. The
# request, the OACK and its ACK 0 are spared: atftp aborts on a repeated
# OACK ("unexpected OACK") and tftp-hpa repeats a lost request only after
# 5 s; the server's own OACK retransmission is tested in tftp.sh.
per10k=$(awk -v l="$LOSS" 'BEGIN { printf "%d", l * 100 + 0.5 }')
for h in srv c1; do
	lab_exec "$h" nft -f - <<EOF || { echo "FAIL: nft rule on $h"; exit 1; }
table inet tftploss {
  chain in {
    type filter hook prerouting priority -300; policy accept;
    meta l4proto udp @th,64,16 { 3, 4 } @th,80,16 != 0 numgen random mod 10000 < $per10k counter drop comment "tftp_loss $LOSS%"
  }
}
EOF
done
SRV_IP=$(lab_ip srv)
PORT=6969
ROOT=$W/root
mkdir -p "$ROOT" "$W/out"
head -c $((1 << 20)) /dev/urandom >"$ROOT/1m.bin"
head -c $((3 << 20)) /dev/urandom >"$ROOT/3m.bin"
head -c $((256 << 10)) /dev/urandom >"$ROOT/256k.bin"
head -c $((512 << 10)) /dev/urandom >"$ROOT/512k.bin"
head -c $((4 << 20)) /dev/urandom >"$ROOT/4m.bin"

# A 100 ms first timeout keeps recovery quick; 7 retries make a transfer
# that is merely unlucky (8 losses in a row, about 1e-8 per block) vanishingly
# rare, while a vanished client is dropped after 0.1 * (2^8 - 1) = 25.5 s.
: >"$W/server.log"
ip netns exec "$(lab_ns srv)" "$SERVER" --data-dir "$W/data" --listen "$SRV_IP:0" --no-tls \
	--set tftp.enabled=yes --set "tftp.listen=$SRV_IP:$PORT" --set "tftp.root=$ROOT" \
	--set tftp.timeout=100ms --set "tftp.retries=$RETRIES" >"$W/server.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 50); do grep -q "tftp: serving" "$W/server.log" && break; sleep 0.1; done
grep -q "tftp: serving" "$W/server.log" || { cat "$W/server.log"; echo "FAIL: server did not start"; exit 1; }

# bg NAME CMD... — runs CMD in c1 in the background, its status in out/NAME.rc.
cd "$W/out" || exit 1
bg() {
	local name=$1
	shift
	(
		ip netns exec "$(lab_ns c1)" timeout 60 "$@" >"$name.log" 2>&1
		echo $? >"$name.rc"
	) &
	BG+=($!)
}
bg hpa1m tftp -m binary "$SRV_IP" "$PORT" -c get 1m.bin hpa1m.out
# atftp without windows ignores a repeated DATA block (its ACK was lost)
# instead of acknowledging it again, and repeats the ACK only on its own
# timeout: each lost ACK costs that second, hence a smaller file.
bg atftp512k atftp --tftp-timeout 1 --option "blksize 1468" -g -r 512k.bin -l atftp512k.out \
	"$SRV_IP" "$PORT"
bg atftp4m_w8 atftp --option "blksize 1468" --option "windowsize 8" --option "tsize 0" \
	-g -r 4m.bin -l atftp4m_w8.out "$SRV_IP" "$PORT"
bg atftp4m_w16 atftp --option "blksize 1468" --option "windowsize 16" \
	-g -r 4m.bin -l atftp4m_w16.out "$SRV_IP" "$PORT"
# curl asks for a "timeout" of its total time / 50 (6 s by default), which the
# server then uses instead of its 100 ms: each loss costs that long. Without
# options it gets the server's; with --connect-timeout 3 it asks for 1 s.
bg curl1m curl -s --tftp-no-options -o curl1m.out "tftp://$SRV_IP:$PORT/1m.bin"
bg curl256k curl -s --connect-timeout 3 --tftp-blksize 1468 -o curl256k.out \
	"tftp://$SRV_IP:$PORT/256k.bin"

# The vanishing clients (python3, standard library): each fetches 4m.bin
# with blksize 1468, acknowledges 20 blocks, then goes silent (socket kept)
# or closes its socket. The silent one records the retransmissions of block
# 21 it still sees; its local port names it in the server log.
cat >"$W/vanish.py" <<'PYEOF'
import socket, struct, sys, time
host, port, mode, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
rrq = struct.pack("!H", 1) + b"4m.bin\0octet\0blksize\0" + b"1468\0"
peer, want, t_end = None, 0, time.monotonic() + 30
while want <= 20 and time.monotonic() < t_end:
    if peer is None:
        s.sendto(rrq, (host, port))
    elif want > 0:
        s.sendto(struct.pack("!HH", 4, want - 1), peer)
    try:
        d, a = s.recvfrom(70000)
    except socket.timeout:
        continue
    op, blk = struct.unpack("!HH", d[:4])
    if op == 6 and want == 0:
        peer, want = a, 1
        s.sendto(struct.pack("!HH", 4, 0), peer)
    elif op == 3 and a == peer and blk == want:
        want += 1
        s.sendto(struct.pack("!HH", 4, blk), peer)
with open(out, "w") as f:
    f.write("port %d blocks %d\n" % (s.getsockname()[1], want - 1))
    f.flush()
    if mode == "close":
        s.close()
        sys.exit(0)
    # Silent: count what still comes, with arrival times.
    s.settimeout(40)
    t0 = time.monotonic()
    while True:
        try:
            d, a = s.recvfrom(70000)
        except socket.timeout:
            break
        f.write("%.2f %d\n" % (time.monotonic() - t0, struct.unpack("!H", d[2:4])[0]))
        f.flush()
PYEOF
bg silent python3 "$W/vanish.py" "$SRV_IP" "$PORT" silent "$W/out/silent.txt"
bg closed python3 "$W/vanish.py" "$SRV_IP" "$PORT" close "$W/out/closed.txt"

# Wait for the transfers (the silent client waits 40 s past the drop: not
# for it, but for the server's log line).
for n in hpa1m atftp512k atftp4m_w8 atftp4m_w16 curl1m curl256k; do
	for _ in $(seq 900); do [ -e "$n.rc" ] && break; sleep 0.1; done
done
check_copy() {
	local name=$1 src=$2 what=$3
	if [ "$(cat "$name.rc" 2>/dev/null)" = 0 ] && cmp -s "$ROOT/$src" "$name.out"; then
		pass "$what: $src intact"
	else
		fail "$what: $src (exit $(cat "$name.rc" 2>/dev/null), copy differs or missing)"
		tail -3 "$name.log"
	fi
}
check_copy hpa1m 1m.bin "tftp-hpa blksize 512"
check_copy atftp512k 512k.bin "atftp blksize 1468"
check_copy atftp4m_w8 4m.bin "atftp blksize 1468 windowsize 8"
check_copy atftp4m_w16 4m.bin "atftp blksize 1468 windowsize 16"
check_copy curl1m 1m.bin "curl --tftp-no-options (blksize 512)"
check_copy curl256k 256k.bin "curl --tftp-blksize 1468 (timeout 1 s)"
echo "# transfers done after $((SECONDS - T0)) s"

# The vanished clients' transfers end on the server's side.
port_of() { awk 'NR == 1 { print $2 }' "$1" 2>/dev/null; }
SPORT=$(port_of silent.txt)
CPORT=$(port_of closed.txt)
[ -n "$SPORT" ] && [ -n "$CPORT" ] || fail "a vanishing client did not get its 20 blocks"
for _ in $(seq 450); do
	grep -q ":$SPORT: 4m.bin dropped" "$W/server.log" && break
	sleep 0.1
done
if grep -q ":$SPORT: 4m.bin dropped: no answer after $RETRIES retries" "$W/server.log"; then
	pass "silent client: dropped after $RETRIES retries"
else fail "silent client: transfer not dropped"; fi
# Block 21's retransmissions that arrived (some are lost): the gaps grow.
if awk 'NR > 1 { t[n++] = $1 } END {
		if (n < 3) exit 1
		for (i = 2; i < n; i++) if (t[i] - t[i-1] < (t[i-1] - t[i-2]) * 1.3) exit 1 }' silent.txt; then
	pass "silent client: retransmissions back off ($(awk 'NR > 1 { printf "%s ", $1 }' silent.txt)s)"
else
	# A lost retransmission merges two gaps, which still grow: only too few is a failure.
	[ "$(($(wc -l <silent.txt) - 1))" -ge 3 ] && pass "silent client: $(($(wc -l <silent.txt) - 1)) retransmissions" ||
		fail "silent client: retransmissions $(tail -n +2 silent.txt | tr '\n' ' ')"
fi
if grep -qE ":$CPORT: 4m.bin (aborted|dropped)" "$W/server.log"; then
	pass "closed client: transfer ended ($(grep -oE ":$CPORT: 4m.bin (aborted|dropped)[^\"]*" "$W/server.log" | cut -d' ' -f3-))"
else fail "closed client: transfer not ended"; fi

# Nothing alarming in the log: no warning, error or sanitizer report, and no
# transfer aborted or dropped but the vanishing clients'.
# A lost final ACK is not alarming: the copies were checked above.
alarm=$(grep -E "warn:|error:|ERROR|runtime error|Sanitizer|aborted|dropped|no ACK" "$W/server.log" |
	grep -vE ":($SPORT|$CPORT): 4m.bin (aborted|dropped)" | grep -v "no ACK of the last block")
nlast=$(grep -c "no ACK of the last block" "$W/server.log")
[ "$nlast" -gt 0 ] && echo "# $nlast transfer(s) lost their final ACK (the client left with the file)"
if [ -z "$alarm" ]; then pass "server log: nothing alarming"; else fail "server log: $alarm"; fi
kill -0 "$SRV_PID" 2>/dev/null && pass "server alive" || fail "server died"
drops() { lab_exec "$1" nft list table inet tftploss | grep -oE 'packets [0-9]+' | head -1; }
echo "# loss $LOSS % each way; dropped at the server: $(drops srv), at the client: $(drops c1); $((SECONDS - T0)) s"

if [ "$FAILS" -ne 0 ]; then
	echo "--- server log (tail)"
	tail -30 "$W/server.log"
	echo "FAIL: $FAILS"
	exit 1
fi
echo "PASS"
