#!/bin/sh
# campaign.sh [SECONDS [BUILD]]: the long fuzzing campaign.
#
# Builds the drivers (make -C BUILD fuzz; BUILD defaults to .dev/build,
# which ./dev makes), then runs every driver for SECONDS (default 3600)
# one after the other under nice -n 19, so that the machine stays usable,
# each over a copy of its seed corpus.  The grown corpora, the logs and
# any crashing input stay in BUILD/fuzz/campaign-DATE/.  The figures of
# each driver (executions, executions per second, libFuzzer's final
# cov: and ft:, the corpus it ended with, peak RSS, crashes) are added
# to tests/fuzz/CAMPAIGN.md (CAMPAIGN_OUT to write elsewhere); a run
# shorter than an hour per driver is labelled a trial there.  libFuzzer
# stops a driver at its first crash: fix it, keep the input in the
# driver's corpus, and run that driver again.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-3600}
build=${2:-$top/.dev/build}
out=${CAMPAIGN_OUT:-$top/tests/fuzz/CAMPAIGN.md}
[ -f "$build/Makefile" ] || { echo "campaign.sh: no build in $build (run ./dev check or configure first)" >&2; exit 1; }
make -s -C "$build" fuzz >/dev/null
drivers=$(make -s -C "$build" print-fuzz-drivers)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$build/fuzz/campaign-$stamp
mkdir -p "$work"
kind="Campaign"
[ "$secs" -ge 3600 ] || kind="TRIAL (not the campaign: a check of the script)"
rows=""
for d in $drivers; do
	mkdir -p "$work/corpus-$d"
	echo "campaign: $d for $secs s" >&2
	rc=0
	nice -n 19 "$build/fuzz/fuzz_$d" -max_total_time="$secs" -timeout=25 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/$d-" "$work/corpus-$d" \
		"$top/tests/fuzz/corpus/$d" >"$work/$d.log" 2>&1 || rc=$?
	stat() { sed -n "s/^stat::$1: *//p" "$work/$d.log" | tail -n 1; }
	last=$(grep -E '^#[0-9]+' "$work/$d.log" | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
	crashes=$(find "$work" -maxdepth 1 -name "$d-*" -type f | wc -l)
	rows="$rows| $d | $secs | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | ${cov:-?} | ${ft:-?} | ${corp:-?} | $(stat peak_rss_mb) | $crashes (exit $rc) |
"
done
{
	echo
	echo "## $kind, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "$secs s per driver, one at a time under nice -n 19, on $(nproc) cores"
	echo "($(${FUZZ_CC:-clang} --version 2>/dev/null | head -n 1));"
	echo "seeds from tests/fuzz/corpus. cov and ft are libFuzzer's last status line;"
	echo "corpus is the files and bytes it ended with; crashes counts the inputs it saved."
	echo
	echo "| driver | seconds | execs | execs/s | cov | ft | corpus | peak RSS MB | crashes |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	printf '%s' "$rows"
} >>"$out"
echo "campaign: figures added to $out; corpora and logs in $work" >&2
