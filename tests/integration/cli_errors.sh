#!/usr/bin/env bash
# The mlcast CLI's error paths, no root needed: bad usage exits 2 with a
# message on stderr, runtime failures (missing store, image, key file,
# corrupted manifest) exit non-zero with a message naming the culprit,
# --help exits 0 with the usage on stdout, and nothing dies of a signal.
# Every command runs under `timeout` and, where the system allows it, in a
# fresh network namespace of its own (unshare -n: loopback only, down), so a
# case that wrongly got as far as the network cannot send anything.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (mlcast not built).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init cli_errors

NS=()
if unshare -rn true 2>/dev/null; then
  NS=(unshare -rn)
elif unshare -n true 2>/dev/null; then
  NS=(unshare -n)
else
  note "no network namespace available: commands run in the host's (all of them fail before the network)"
fi
cd "$MC_W" || die "cd $MC_W"
head -c 1048576 /dev/urandom >small.img
"$MLCAST" prepare --quiet small.img store >/dev/null 2>&1 || die "prepare small.img"
mkdir -p emptydir keydir
printf 'short' >short.key
head -c 300 /dev/urandom >long.key
head -c 32 /dev/urandom >good.key
mkdir -p badstore
head -c 4096 /dev/urandom >badstore/manifest
cp store/data badstore/data

# run CMD... — runs CMD (under timeout, in its own netns) with stdout in
# out.txt and stderr in err.txt; sets RC.
run() {
  timeout -k 5 20 "${NS[@]}" "$@" >out.txt 2>err.txt
  RC=$?
}

# expect CODES PATTERN WHERE DESC CMD... — CODES is one exit status or
# several separated by '|'; PATTERN (extended regex, case-insensitive) must
# appear in WHERE (err = stderr, out = stdout, any = either).
expect() {
  local codes=$1 pat=$2 where=$3 what=$4 text first
  shift 4
  run "$@"
  case $where in
    err) text=$(cat err.txt) ;;
    out) text=$(cat out.txt) ;;
    *) text=$(cat out.txt err.txt) ;;
  esac
  first=$(cat err.txt out.txt | grep -v '^$' | head -n 1 | cut -c1-160)
  if [ "$RC" -ge 124 ]; then
    bad "$what: killed or timed out (exit $RC) — $first"
  elif ! [[ "|$codes|" == *"|$RC|"* ]]; then
    bad "$what: exit $RC, expected $codes — $first"
  elif ! grep -qiE -- "$pat" <<<"$text"; then
    bad "$what: no /$pat/ on $where: $first"
  else
    ok "$what (exit $RC: $first)"
  fi
}

# ---- usage errors: exit 2, message on stderr
expect 2 'usage' err "no command" "$MLCAST"
expect 2 "unknown command" err "unknown command" "$MLCAST" frobnicate
expect 2 'unknown option|unrecognized' err "send: unknown option" "$MLCAST" send --bogus store
expect 2 'unknown option|unrecognized' err "receive: unknown option" "$MLCAST" receive --bogus -o x
expect 2 'unknown option|unrecognized|bad option' err "unpack: unknown option" "$MLCAST" unpack --bogus store out
expect 2 '-o OUTPUT|output' err "receive: missing -o" "$MLCAST" receive
expect 2 'requires an argument|-o' err "receive: -o without a value" "$MLCAST" receive -o
expect 2 'unexpected argument' err "receive: stray argument" "$MLCAST" receive -o x extra
expect 2 'rate' err "send: --rate abc" "$MLCAST" send --rate abc store
expect 2 'rate' err "send: --rate 0" "$MLCAST" send -r 0 store
expect 2 'rate' err "send: --rate empty" "$MLCAST" send -r '' store
expect 2 'rate' err "send: --rate 99999999999999999999G" "$MLCAST" send -r 99999999999999999999G store
expect 2 'rate' err "send: --rate -5M" "$MLCAST" send -r -5M store
expect 2 'min-rate' err "send: --min-rate above --rate" "$MLCAST" send --min-rate 2G -r 1G store
for p in 0 70000 -1 7770abc 99999999999999999999; do
  expect 2 'port' err "send: --port $p" "$MLCAST" send -p "$p" store
  expect 2 'port' err "receive: --port $p" "$MLCAST" receive -p "$p" -o x
done
for g in 10.0.0.1 239.1.1.1.1 255.255.255.255 not-an-address; do
  expect 2 'group' err "send: --group $g" "$MLCAST" send -g "$g" store
  expect 2 'group' err "receive: --group $g" "$MLCAST" receive -g "$g" -o x
done
expect 2 'STORE_DIR' err "send: missing STORE_DIR" "$MLCAST" send
expect 2 'STORE_DIR' err "send: two STORE_DIRs" "$MLCAST" send store store
expect 2 'min-receivers' err "send: -n 0" "$MLCAST" send -n 0 store
expect 2 'min-receivers' err "send: -n abc" "$MLCAST" send -n abc store
expect 2 'wait' err "send: -w 0" "$MLCAST" send -w 0 store
expect 2 'rx-timeout' err "send: --rx-timeout 0" "$MLCAST" send --rx-timeout 0 store
expect 2 'ttl' err "send: --ttl 0" "$MLCAST" send --ttl 0 store
expect 2 'ttl' err "send: --ttl 256" "$MLCAST" send --ttl 256 store
expect 2 'timeout' err "receive: --timeout abc" "$MLCAST" receive --timeout abc -o x
expect 2 'timeout' err "receive: --timeout 0" "$MLCAST" receive --timeout 0 -o x
expect 2 'threads' err "receive: --threads 0" "$MLCAST" receive --threads 0 -o x
expect 2 'session' err "receive: --session 0" "$MLCAST" receive --session 0 -o x
expect 2 'IMAGE' err "prepare: no arguments" "$MLCAST" prepare
expect 2 'chunk-size' err "prepare: --chunk-size 3M" "$MLCAST" prepare --chunk-size 3M small.img store-x
expect 2 'chunks' err "send: --chunks without a value" "$MLCAST" send store --chunks
expect 2 'chunks' err "prepare: --chunks without a value" "$MLCAST" prepare --chunks
expect 2 'STORE_DIR' err "unpack: one argument" "$MLCAST" unpack store
expect 2 'STORE_DIR' err "info: no argument" "$MLCAST" info

# ---- --help: exit 0, usage on stdout, nothing on stderr
for c in send receive prepare unpack info; do
  expect 0 "^usage: mlcast $c" out "$c --help" "$MLCAST" "$c" --help
  check "$c --help: nothing on stderr" test ! -s err.txt
done
expect 0 '^usage: mlcast send' out "send -h" "$MLCAST" send -h
expect 0 '^usage: mlcast receive' out "receive -h" "$MLCAST" receive -h
expect 0 '^usage: mlcast' out "mlcast --help" "$MLCAST" --help

# ---- runtime failures: exit 1 (2 accepted for key files read while parsing
# the options), a message naming the culprit
expect 1 '/nonexistent/store' any "send: store that does not exist" "$MLCAST" send /nonexistent/store
expect 1 'emptydir' any "send: directory that is not a store" "$MLCAST" send emptydir
expect 1 'manifest' any "send: store with a garbage manifest" "$MLCAST" send badstore
expect 1 'chunk store /nonexistent/chunks' any "send: --chunks that does not exist" "$MLCAST" send --chunks /nonexistent/chunks store
mkdir -p version && cp store/manifest version/
expect 1 'version/data' any "send: a manifest-only version without --chunks" "$MLCAST" send version
expect 1 'chunk store /nonexistent/chunks' any "unpack: --chunks that does not exist" "$MLCAST" unpack --chunks /nonexistent/chunks store out-c
check "unpack with a missing chunk store creates no output" test ! -e out-c -a ! -e out-c.part
expect 1 'nonexistent\.img' any "prepare: missing image" "$MLCAST" prepare /nonexistent.img store-x
check "prepare of a missing image leaves no store" test ! -e store-x
expect 1 'nonexistent' any "info: missing store" "$MLCAST" info /nonexistent
expect 1 'manifest|checksum' any "info: garbage manifest" "$MLCAST" info badstore
expect 1 'nonexistent' any "unpack: missing store" "$MLCAST" unpack /nonexistent out-x
expect '1|2' '/nonexistent/key' any "receive: missing key file" "$MLCAST" receive -k /nonexistent/key -o out-k
check "receive with a missing key file creates no output" test ! -e out-k -a ! -e out-k.mlcast-part
expect '1|2' '/nonexistent/key' any "send: missing key file" "$MLCAST" send -k /nonexistent/key store
expect '1|2' 'short\.key.*short' any "receive: key file under 16 bytes" "$MLCAST" receive -k short.key -o out-k
expect '1|2' 'long\.key.*long' any "receive: key file over 256 bytes" "$MLCAST" receive -k long.key -o out-k
expect '1|2' 'keydir' any "send: key file that is a directory" "$MLCAST" send -k keydir store
expect '1|2' 'nosuchif' any "send: unknown interface" "$MLCAST" send -i nosuchif0 store
long=$(printf 'x%.0s' $(seq 1 5000))
expect 1 'xxxx' any "send: 5000-character store path" "$MLCAST" send "$long"
expect 1 '.' any "send: store path with control characters" "$MLCAST" send $'bad\n\033[31mdir\001'

# ---- nothing dumped core
check "no core files" test -z "$(find "$MC_W" -maxdepth 1 -name 'core*' -print -quit)"

mc_finish
