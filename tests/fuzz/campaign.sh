#!/bin/sh
# campaign.sh [SECONDS [BUILD]]: the long fuzzing campaign.
#
# Builds the drivers (make -C BUILD fuzz; BUILD defaults to .dev/build,
# which ./dev makes), then runs every driver for SECONDS (default 3600)
# under nice -n 19, so that the machine stays usable, each over a copy of
# its seed corpus.  CAMPAIGN_JOBS (default 1) drivers run at a time, in
# that many lanes; CAMPAIGN_DRIVERS names a subset, in the order to run.
# The grown corpora, the logs and any crashing input stay in
# BUILD/fuzz/campaign-DATE/.  A section for the run is added to
# tests/fuzz/CAMPAIGN.md (CAMPAIGN_OUT to write elsewhere) at the start,
# and each driver's row (executions, executions per second, the CPU
# seconds it had, libFuzzer's final cov: and ft:, the corpus it ended
# with, peak RSS, crashes) as it ends, so a run cut short keeps what it
# finished.  A run shorter than an hour per driver is labelled a trial.
# libFuzzer stops a driver at its first crash: fix it, keep the input in
# the driver's corpus, and run that driver again.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-3600}
build=${2:-$top/.dev/build}
out=${CAMPAIGN_OUT:-$top/tests/fuzz/CAMPAIGN.md}
jobs=${CAMPAIGN_JOBS:-1}
[ -f "$build/Makefile" ] || { echo "campaign.sh: no build in $build (run ./dev check or configure first)" >&2; exit 1; }
case $jobs in *[!0-9]*|''|0) echo "campaign.sh: CAMPAIGN_JOBS must be a number from 1" >&2; exit 1;; esac
make -s -C "$build" fuzz >/dev/null
drivers=${CAMPAIGN_DRIVERS:-$(make -s -C "$build" print-fuzz-drivers)}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$build/fuzz/campaign-$stamp
mkdir -p "$work"
kind="Campaign"
[ "$secs" -ge 3600 ] || kind="TRIAL (not the campaign: a check of the script)"
at_a_time="one at a time"
[ "$jobs" -eq 1 ] || at_a_time="$jobs at a time"
timer=""
[ -x /usr/bin/time ] && timer="/usr/bin/time"

# run_one DRIVER: run it, then append its row to $out.
run_one() {
	d=$1
	mkdir -p "$work/corpus-$d"
	echo "campaign: $d for $secs s" >&2
	rc=0
	${timer:+$timer -f "%U %S" -o "$work/$d.cpu"} nice -n 19 "$build/fuzz/fuzz_$d" \
		-max_total_time="$secs" -timeout=25 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/$d-" "$work/corpus-$d" \
		"$top/tests/fuzz/corpus/$d" >"$work/$d.log" 2>&1 || rc=$?
	stat() { sed -n "s/^stat::$1: *//p" "$work/$d.log" | tail -n 1; }
	last=$(grep -E '^#[0-9]+' "$work/$d.log" | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
	cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { printf "%d", $1 + $2 }' "$work/$d.cpu" 2>/dev/null || true)
	# Crashes, leaks, timeouts and out-of-memory inputs; a slow unit (an
	# input that took over 10 s, which a starved process can report for
	# a quick input) is counted apart.
	crashes=$(find "$work" -maxdepth 1 -type f \( -name "$d-crash-*" -o -name "$d-leak-*" \
		-o -name "$d-timeout-*" -o -name "$d-oom-*" \) | wc -l)
	slow=$(find "$work" -maxdepth 1 -type f -name "$d-slow-unit-*" | wc -l)
	# One short line, appended whole: lanes do not interleave within it.
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (exit %s) | %s |\n' \
		"$d" "$secs" "${cpu:-?}" "$(stat number_of_executed_units)" \
		"$(stat average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
		"$(stat peak_rss_mb)" "$crashes" "$rc" "$slow" >>"$out"
}

{
	echo
	echo "## $kind, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "$secs s per driver, $at_a_time under nice -n 19, on $(nproc) cores"
	echo "($(${FUZZ_CC:-clang} --version 2>/dev/null | head -n 1));"
	echo "seeds from tests/fuzz/corpus. cpu s is the user and system time the driver"
	echo "had; cov and ft are libFuzzer's last status line; corpus is the files and"
	echo "bytes it ended with; crashes counts the crashing, leaking, timing-out and"
	echo "out-of-memory inputs it saved, slow the inputs libFuzzer reported as slow."
	echo "Rows come in the order the drivers ended."
	echo
	echo "| driver | seconds | cpu s | execs | execs/s | cov | ft | corpus | peak RSS MB | crashes | slow |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} >>"$out"
# Lane i takes drivers i, i+jobs, i+2*jobs, ...
lane=0
while [ "$lane" -lt "$jobs" ]; do
	(
		n=0
		for d in $drivers; do
			[ $((n % jobs)) -eq "$lane" ] && run_one "$d"
			n=$((n + 1))
		done
	) &
	lane=$((lane + 1))
done
wait
echo "campaign: figures added to $out; corpora and logs in $work" >&2
