#!/bin/bash
# prepare -> unpack round trips through the real mlcast binary: a sparse raw
# image and a qcow2 of it, byte-identical results, the CLI's error exits, and
# a corrupted store that unpack must refuse.
# Env: MLBUILD (build dir), MLSRC (source dir). Exit 0 pass, 1 fail, 77 skip.
set -u

MLCAST="${MLBUILD:?MLBUILD not set}/src/mcast/mlcast"
if [ ! -x "$MLCAST" ]; then
	echo "SKIP: $MLCAST not built"
	exit 77
fi

TMP=$(mktemp -d /tmp/prepare_roundtrip.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

FAILS=0
ok() { echo "ok   - $*"; }
fail() {
	echo "FAIL - $*"
	FAILS=$((FAILS + 1))
}
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
# json_field FILE KEY: the value of a top-level scalar in mlcast's one-line JSON.
json_field() { grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2 | tr -d '"'; }

# expect_exit CODE PATTERN DESCRIPTION COMMAND...: exit status CODE and PATTERN on stderr.
expect_exit() {
	local code=$1 pattern=$2 what=$3 rc
	shift 3
	"$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
	rc=$?
	if [ "$rc" -ne "$code" ]; then
		fail "$what: exit $rc, expected $code ($(head -n1 "$TMP/err.txt"))"
	elif ! grep -qi -- "$pattern" "$TMP/err.txt"; then
		fail "$what: stderr lacks '$pattern': $(head -n1 "$TMP/err.txt")"
	else
		ok "$what (exit $code: $(head -n1 "$TMP/err.txt"))"
	fi
}

# A 64 MiB + 12 KiB sparse image (65 chunks of 1 MiB, the last one short):
# holes, random data (chunks 1-5, 20-23), explicit zeros (a data extent,
# chunks 30-33, that must still come out as zero chunks), compressible text
# (chunks 40-45) and data in the short last chunk (64): 16 data chunks, 49
# zero. The size is a multiple of 512 because qcow2 rounds virtual sizes up
# to whole sectors, and the qcow2 must hold the same bytes.
IMG=$TMP/disk.raw
truncate -s $((64 * 1024 * 1024 + 12288)) "$IMG"
put() { dd of="$IMG" conv=notrunc iflag=fullblock status=none "$@"; }
head -c $((5 * 1024 * 1024)) /dev/urandom | put bs=1M seek=1
head -c $((3 * 1024 * 1024 + 4096)) /dev/urandom | put bs=4096 seek=$((20 * 256 + 1))
dd if=/dev/zero of="$IMG" bs=1M seek=30 count=4 conv=notrunc status=none
yes "mlcast prepare round trip, compressible text" | head -c $((6 * 1024 * 1024)) | put bs=1M seek=40
head -c 9000 /dev/urandom | put bs=1M seek=64
IMG_SHA=$(sha "$IMG")
echo "image: $(stat -c %s "$IMG") bytes, $(du -k "$IMG" | cut -f1) KiB allocated, sha256 $IMG_SHA"

# Raw image, default chunk size.
check "prepare raw image" "$MLCAST" prepare --json "$IMG" "$TMP/store-raw" >"$TMP/raw.json"
cat "$TMP/raw.json"
check "manifest and data exist, nothing else" \
	test "$(ls -A "$TMP/store-raw" | tr '\n' ' ')" = "data manifest "
check "prepare reports the image's sha256" test "$(json_field "$TMP/raw.json" image_sha256)" = "$IMG_SHA"
ZERO=$(json_field "$TMP/raw.json" zero_chunks)
ZSTD=$(json_field "$TMP/raw.json" zstd_chunks)
check "49 zero chunks of 65 (got $ZERO)" test "${ZERO:-0}" -eq 49
check "compressed chunks found (got $ZSTD)" test "${ZSTD:-0}" -ge 6
check "stored bytes below image size" \
	test "$(json_field "$TMP/raw.json" stored_bytes)" -lt $((16 * 1024 * 1024))
check "info agrees with prepare" \
	sh -c "'$MLCAST' info --json '$TMP/store-raw' | grep -q '\"image_sha256\":\"$IMG_SHA\"'"
check "info --chunks lists 65 chunks" \
	test "$("$MLCAST" info --chunks "$TMP/store-raw" | grep -cE '^ +[0-9]+ (zero|zstd|raw) ')" -eq 65
check "unpack raw store" "$MLCAST" unpack "$TMP/store-raw" "$TMP/out-raw"
check "unpacked raw image is identical" test "$(sha "$TMP/out-raw")" = "$IMG_SHA"
check "no .part file left" test ! -e "$TMP/out-raw.part"
check "unpack --sparse" "$MLCAST" unpack --quiet --sparse "$TMP/store-raw" "$TMP/out-sparse"
check "sparse unpack is identical" cmp -s "$IMG" "$TMP/out-sparse"
check "sparse unpack allocates less than 20 MiB" \
	test "$(du -k "$TMP/out-sparse" | cut -f1)" -lt 20480

# Smaller chunks give the same bytes back.
check "prepare with --chunk-size 64K --level 9 --threads 3" \
	"$MLCAST" prepare --quiet --chunk-size 64K --level 9 --threads 3 "$IMG" "$TMP/store-64k"
check "unpack 64K store" "$MLCAST" unpack --quiet "$TMP/store-64k" "$TMP/out-64k"
check "64K round trip is identical" test "$(sha "$TMP/out-64k")" = "$IMG_SHA"

# qcow2 of the same image.
if command -v qemu-img >/dev/null; then
	QCOW=$TMP/disk.qcow2
	check "qemu-img convert to qcow2" qemu-img convert -q -f raw -O qcow2 "$IMG" "$QCOW"
	check "prepare qcow2 image" "$MLCAST" prepare --json "$QCOW" "$TMP/store-qcow" >"$TMP/qcow.json"
	cat "$TMP/qcow.json"
	check "qcow2 prepare hashes the raw content" \
		test "$(json_field "$TMP/qcow.json" image_sha256)" = "$IMG_SHA"
	check "qcow2 temp file removed" \
		test "$(ls -A "$TMP/store-qcow" | tr '\n' ' ')" = "data manifest "
	check "qcow2 and raw stores are identical" \
		cmp -s "$TMP/store-raw/manifest" "$TMP/store-qcow/manifest"
	check "unpack qcow2 store" "$MLCAST" unpack --quiet "$TMP/store-qcow" "$TMP/out-qcow"
	check "unpacked qcow2 image is identical" test "$(sha "$TMP/out-qcow")" = "$IMG_SHA"
	# A file with the qcow2 magic that qemu-img cannot read.
	printf 'QFI\373garbage' >"$TMP/bad.qcow2"
	head -c 4096 /dev/zero >>"$TMP/bad.qcow2"
	expect_exit 1 "qemu-img" "broken qcow2 -> exit 1" \
		"$MLCAST" prepare "$TMP/bad.qcow2" "$TMP/store-bad"
	check "broken qcow2 leaves no store behind" test ! -e "$TMP/store-bad"
else
	echo "skip - qemu-img not installed (Debian package qemu-utils): qcow2 checks skipped"
fi

# Error exits.
expect_exit 1 "no such file" "missing image -> exit 1" \
	"$MLCAST" prepare "$TMP/nonexistent.img" "$TMP/store-x"
check "missing image leaves no store behind" test ! -e "$TMP/store-x"
expect_exit 2 "chunk-size" "--chunk-size 3M -> exit 2" \
	"$MLCAST" prepare --chunk-size 3M "$IMG" "$TMP/store-x"
expect_exit 2 "chunk-size" "--chunk-size 32M -> exit 2" \
	"$MLCAST" prepare --chunk-size 32M "$IMG" "$TMP/store-x"
expect_exit 2 "chunk-size" "--chunk-size abc -> exit 2" \
	"$MLCAST" prepare --chunk-size abc "$IMG" "$TMP/store-x"
expect_exit 2 "expected IMAGE" "missing STORE_DIR -> exit 2" "$MLCAST" prepare "$IMG"
expect_exit 1 "already holds a manifest" "existing store -> exit 1" \
	"$MLCAST" prepare "$IMG" "$TMP/store-raw"
check "refused store still unpacks" "$MLCAST" unpack --quiet "$TMP/store-raw" "$TMP/out-again"
expect_exit 1 "empty" "empty image -> exit 1" \
	sh -c ": >'$TMP/empty.img' && exec '$MLCAST' prepare '$TMP/empty.img' '$TMP/store-x'"
expect_exit 1 "not a regular file" "directory as image -> exit 1" \
	"$MLCAST" prepare "$TMP" "$TMP/store-x"
expect_exit 1 "not a prepared store" "unpack of a non-store -> exit 1" \
	"$MLCAST" unpack "$TMP" "$TMP/out-x"
expect_exit 1 "no manifest" "info of a non-store -> exit 1" "$MLCAST" info "$TMP"

# A corrupted store: one flipped byte in the data file must be caught. The
# byte is inverted, not overwritten with a constant: the data is random, and
# a constant equal to the byte already there (1 run in 256) changed nothing.
cp -r "$TMP/store-raw" "$TMP/store-bad"
orig=$(od -An -tu1 -j 12345 -N 1 "$TMP/store-bad/data" | tr -d ' ')
printf "\\$(printf '%03o' $((255 - orig)))" |
	dd of="$TMP/store-bad/data" bs=1 seek=12345 conv=notrunc status=none
expect_exit 1 "mismatch" "corrupted data -> unpack exit 1" \
	"$MLCAST" unpack "$TMP/store-bad" "$TMP/out-bad"
check "corrupted unpack leaves neither output nor .part" \
	test ! -e "$TMP/out-bad" -a ! -e "$TMP/out-bad.part"
# A corrupted manifest is refused by its checksum.
printf '\x01' | dd of="$TMP/store-bad/manifest" bs=1 seek=100 conv=notrunc status=none
expect_exit 1 "checksum" "corrupted manifest -> info exit 1" "$MLCAST" info "$TMP/store-bad"

if [ "$FAILS" -ne 0 ]; then
	echo "$FAILS check(s) failed"
	exit 1
fi
echo "all checks passed"
exit 0
