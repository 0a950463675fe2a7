#!/usr/bin/env bash
# The whole of `make check`:
#   1. configure and build three trees: a normal one, one with ASan+UBSan,
#      and a clang one with the libFuzzer harnesses;
#   2. run every meson test suite in the normal and the sanitizer trees;
#   3. run each fuzz harness for FUZZ_SECONDS on a copy of its seed corpus;
#   4. print the failing tests' logs, then as the very last line
#      "N passed, N failed, N skipped", and exit non-zero if anything failed.
#
# A build that fails counts as one failed test (its tests cannot run).
# Environment:
#   FUZZ_SECONDS   seconds per harness (default 10)
#   BUILD_DIR, ASAN_DIR, FUZZ_DIR   build trees (default build, build-asan, build-fuzz)
#   CHECK_PARTS    which parts to run (default "build asan fuzz")
#   MESON_TEST_ARGS  extra arguments for `meson test` (e.g. "--suite unit")
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

FUZZ_SECONDS=${FUZZ_SECONDS:-10}
BUILD_DIR=${BUILD_DIR:-build}
ASAN_DIR=${ASAN_DIR:-build-asan}
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
CHECK_PARTS=${CHECK_PARTS:-build asan fuzz}
read -r -a MESON_TEST_ARGS <<<"${MESON_TEST_ARGS:-}"

# Sanitizers (the ASan tree and the fuzzers) stop at the first error and
# say where; UBSan would otherwise only print and go on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

passed=0
failed=0
skipped=0
# Logs of failures, printed together just before the summary.
fail_report=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$work" "$fail_report"' EXIT

say() { printf '\n==> %s\n' "$*"; }

want() { [[ " $CHECK_PARTS " == *" $1 "* ]]; }

# fail_with NAME LOGFILE: counts one failure and keeps the tail of its log.
fail_with() {
	failed=$((failed + 1))
	{
		printf '\n--- FAILED: %s ---\n' "$1"
		if [ -n "${2:-}" ] && [ -f "$2" ]; then
			tail -n 60 "$2"
		fi
	} >>"$fail_report"
}

# setup_and_build DIR [meson options...]: configures DIR (or updates its
# options) and builds it. Returns non-zero, with the failure counted, if
# either step fails.
setup_and_build() {
	local dir=$1 log rc=0
	shift
	log="$work/build-$(basename "$dir").log"
	say "configure and build $dir"
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$log" 2>&1 || rc=$?
	elif [ $# -gt 0 ]; then
		meson configure "$dir" "$@" >"$log" 2>&1 || rc=$?
	fi
	if [ $rc -ne 0 ]; then
		tail -n 30 "$log"
		echo "configuring $dir FAILED"
		fail_with "configure $dir" "$log"
		return 1
	fi
	# Show only the errors here; the failure report gets the log's tail.
	ninja -C "$dir" >"$log" 2>&1 || rc=$?
	grep -E '^FAILED|error:|ninja: build stopped' "$log"
	if [ $rc -ne 0 ]; then
		echo "building $dir FAILED"
		fail_with "build $dir" "$log"
		return 1
	fi
	echo "built $dir"
	return 0
}

# count_testlog DIR LABEL SHOW_TIMES: adds the results in DIR's
# meson-logs/testlog.json to the totals; keeps the logs of failures; with
# SHOW_TIMES=1 prints each test's duration.
count_testlog() {
	local dir=$1 label=$2 times=$3 counts
	counts=$(python3 - "$dir/meson-logs/testlog.json" "$label" "$times" "$fail_report" <<'EOF'
import json, sys

path, label, times, report = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
ok = bad = skip = 0
rows = []
with open(path) as f, open(report, "a") as rep:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        name = t.get("name", "?")
        res = t.get("result", "ERROR")
        rows.append((t.get("duration", 0.0), res, name))
        # meson maps exit code 77 to SKIP; an expected failure is a pass.
        if res in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif res == "SKIP":
            skip += 1
        else:
            bad += 1
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            tail = "\n".join(out.splitlines()[-60:])
            rep.write(f"\n--- FAILED: {label} {name} ({res}, exit {t.get('returncode')}) ---\n{tail}\n")
if times:
    print(f"durations in {label}:", file=sys.stderr)
    for d, res, name in sorted(rows, reverse=True):
        print(f"  {d:8.2f}s  {res:<8} {name}", file=sys.stderr)
print(ok, bad, skip)
EOF
	) || {
		fail_with "reading $dir/meson-logs/testlog.json" ""
		return
	}
	local p f s
	read -r p f s <<<"$counts"
	echo "$label: $p passed, $f failed, $s skipped"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}

# run_meson_tests DIR LABEL SHOW_TIMES [meson test options]: runs every
# suite; a non-zero exit of meson test is expected when a test fails, so
# results come from its log.
run_meson_tests() {
	local dir=$1 label=$2 times=$3 start end
	shift 3
	say "meson test in $dir (all suites)"
	rm -f "$dir/meson-logs/testlog.json"
	start=$(date +%s)
	meson test -C "$dir" --no-rebuild "$@" "${MESON_TEST_ARGS[@]}"
	end=$(date +%s)
	echo "meson test in $dir took $((end - start)) s"
	if [ ! -f "$dir/meson-logs/testlog.json" ]; then
		fail_with "meson test in $dir (no testlog.json)" ""
		return
	fi
	count_testlog "$dir" "$label" "$times"
}

# run_fuzzers: each harness in FUZZ_DIR/tests/fuzz runs for FUZZ_SECONDS on
# a temp copy of tests/fuzz/corpus/NAME, so the committed corpus never grows.
run_fuzzers() {
	local bin name corpus log rc found=0
	say "fuzzing, ${FUZZ_SECONDS} s per harness"
	for bin in "$FUZZ_DIR"/tests/fuzz/fuzz_*; do
		if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
			continue
		fi
		found=1
		name=$(basename "$bin")
		corpus="$work/corpus-$name"
		mkdir -p "$corpus" "$work/artifacts-$name"
		if [ -d "tests/fuzz/corpus/${name#fuzz_}" ]; then
			cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/"
		fi
		log="$work/$name.log"
		"$bin" -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=4096 \
			-print_final_stats=1 -artifact_prefix="$work/artifacts-$name/" \
			"$corpus" >"$log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			passed=$((passed + 1))
			printf '  %-16s ok   (%s)\n' "$name" \
				"$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs"
		else
			# Keep the crashing input where it outlives this script.
			mkdir -p "$FUZZ_DIR/fuzz-artifacts"
			cp "$work/artifacts-$name/"* "$FUZZ_DIR/fuzz-artifacts/" 2>/dev/null
			printf '  %-16s FAILED (exit %d; inputs kept in %s/fuzz-artifacts)\n' \
				"$name" "$rc" "$FUZZ_DIR"
			fail_with "fuzz $name (exit $rc)" "$log"
		fi
	done
	[ $found -eq 1 ] || echo "  (no fuzz harnesses built)"
}

if want build && setup_and_build "$BUILD_DIR"; then
	run_meson_tests "$BUILD_DIR" "$BUILD_DIR" 0
fi

if want asan && setup_and_build "$ASAN_DIR" -Db_sanitize=address,undefined -Db_lundef=false; then
	# Sanitized tests run two to three times slower: give them more time.
	run_meson_tests "$ASAN_DIR" "$ASAN_DIR" 1 --timeout-multiplier 3
fi

if want fuzz; then
	# The compiler is fixed at setup: a tree set up with another one starts over.
	if [ -f "$FUZZ_DIR/build.ninja" ] &&
		! grep -q '^C compiler for the host machine: clang' "$FUZZ_DIR/meson-logs/meson-log.txt"; then
		rm -rf "$FUZZ_DIR"
	fi
	if CC=clang setup_and_build "$FUZZ_DIR" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false; then
		run_fuzzers
	fi
fi

if [ -s "$fail_report" ]; then
	say "logs of failed tests (last lines)"
	cat "$fail_report"
	echo
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
