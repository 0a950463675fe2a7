# shellcheck shell=bash
# checks.sh — counted checks for the shell tests. Source it; do not run it.
#
#   check DESCRIPTION COMMAND...   runs COMMAND: "ok: ..." or "FAIL: ..." (counted)
#   pass TEXT / fail TEXT          the same by hand
#   die TEXT                       "FAIL: TEXT" and exit 1 (a step others need failed)
#
# $CHECKS counts the checks, $FAILS the failed ones; the test ends with its
# own summary (deploylib.sh's dl_summary for the tests that use it).
CHECKS=0 FAILS=0
pass() {
	echo "ok: $*"
	CHECKS=$((CHECKS + 1))
}
fail() {
	echo "FAIL: $*"
	CHECKS=$((CHECKS + 1))
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
