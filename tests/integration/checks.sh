# shellcheck shell=bash
# checks.sh — counted checks for the shell tests that do not use
# deploylib.sh (install_disk.sh, install_boot.sh). Source it; do not run it.
#
#   check DESCRIPTION COMMAND...   runs COMMAND: "ok: ..." or "FAIL: ..." (counted)
#   pass TEXT / fail TEXT          the same by hand
#   die TEXT                       "FAIL: TEXT" and exit 1 (a step others need failed)
#
# $FAILS counts the failed checks; the test ends with its own summary.
FAILS=0
pass() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}
check() { # description command...
	local d=$1
	shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}
die() {
	echo "FAIL: $*"
	exit 1
}
