#!/bin/sh
# run.sh SECONDS BINDIR CORPUS DRIVER...: run each libFuzzer driver
# BINDIR/fuzz_DRIVER for SECONDS over a copy of CORPUS/DRIVER (every
# input there, crash reproducers included, runs first), FUZZ_JOBS of them
# at a time (the machine's processors): each is one process on one core,
# so two cores fuzz two drivers in the time of one.  Prints PASS or FAIL
# per driver, in the order given, with the log's end and the input that
# failed (copied to BINDIR) on a failure; exits 1 if any failed.  make
# fuzz-run and ./dev check use it.
set -u
secs=$1 bindir=$2 corpus=$3
shift 3
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
case $jobs in
'' | 0 | *[!0-9]*) jobs=1 ;;
esac
work=$(mktemp -d "${TMPDIR:-/tmp}/agora-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# One driver; what it has to say goes to $work/$1.out.
run_one() {
	d=$1
	mkdir -p "$work/$d"
	if "$bindir/fuzz_$d" -max_total_time="$secs" -timeout=25 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/$d-" "$work/$d" "$corpus/$d" \
		>"$work/$d.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$d.log")
		echo "PASS: fuzz_$d ($runs runs in $secs s)"
	else
		echo "FAIL: fuzz_$d"
		grep -v '^INFO:' "$work/$d.log" | tail -n 40
		for f in "$work/$d"-*; do
			[ -f "$f" ] || continue
			cp "$f" "$bindir/" && echo "the input: $bindir/$(basename "$f")"
		done
	fi >"$work/$d.out"
}

n=0
for d in "$@"; do
	run_one "$d" &
	n=$((n + 1))
	[ $((n % jobs)) -ne 0 ] || wait
done
wait
failed=0
for d in "$@"; do
	cat "$work/$d.out"
	# A driver that said nothing (killed, say) failed too.
	grep -q '^PASS:' "$work/$d.out" || failed=1
done
exit $failed
