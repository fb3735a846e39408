# bench.sh: the benchmarks behind ./dev bench, sourced by dev after the
# stack's database and memcached are up.
#
# For each web server (Apache, lighttpd) and process model (managed by the
# server, or a fixed pool on a shared socket) it measures with wrk, in one
# run: a static file and a do-nothing FastCGI program (the two ceilings),
# and GET /api/v1/health (one prepared query), at 50 and 500 connections.
# Figures on a shared machine are noisy: read the ratios, which compare
# results of the same run.

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_CONNS=${BENCH_CONNS:-"50 500"}
BENCH_SERVERS=${BENCH_SERVERS:-"apache lighttpd"}
BENCH_MODES=${BENCH_MODES:-"managed pool"}
BENCH_OUT=${BENCH_OUT:-$DEV/bench-results.txt}

# Extra configuration that serves bench/noop at /bench/noop.
bench_extra() {
	local server=$1 mode=$2 noop=$BUILD/bench/noop u=()
	if [ "$mode" = pool ]; then
		if is_root; then u=(-u www-data -g www-data -U www-data -G www-data); fi
		rm -f "$RUNDIR/noop.sock"
		spawn-fcgi -s "$RUNDIR/noop.sock" -F "${AGORA_POOL_PROCS:-8}" -M 0660 \
			"${u[@]}" -- "$noop" 2>&1 | sed -n 's/.*PID: \([0-9]*\).*/\1/p' \
			> "$RUNDIR/noop.pids"
	fi
	case "$server-$mode" in
	apache-managed) cat <<-CONF ;;
		Alias /bench/noop "$noop"
		<Directory "$BUILD/bench">
			Options +ExecCGI
			SetHandler fcgid-script
			Require all granted
		</Directory>
	CONF
	apache-pool) echo "ProxyPass /bench/noop \"unix:$RUNDIR/noop.sock|fcgi://noop/bench/noop\"" ;;
	lighttpd-managed) cat <<-CONF ;;
		fastcgi.server += ( "/bench/noop" => (( "bin-path" => "$noop",
			"socket" => "$RUNDIR/lighttpd-noop.sock", "min-procs" => 4,
			"max-procs" => 4, "check-local" => "disable" )) )
	CONF
	lighttpd-pool) cat <<-CONF ;;
		fastcgi.server += ( "/bench/noop" => (( "socket" => "$RUNDIR/noop.sock",
			"check-local" => "disable" )) )
	CONF
	esac
}

# Print "req/s p50_ms p99_ms errors" for one wrk run.
bench_wrk() {
	wrk -t2 -c"$1" -d"${BENCH_SECONDS}s" --latency "$2" 2>&1 | awk '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /s$/) return v * 1000
			return v
		}
		/Requests\/sec/ { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx/ { err += $NF }
		/Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
		END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, err }'
}

bench_one() {
	local server=$1 mode=$2 base=http://127.0.0.1:$HTTP_PORT c target path
	local static noop line rps p50 p99 err
	bench_extra "$server" "$mode" > "$STATE/bench-extra.conf"
	BENCH_INCLUDE=$STATE/bench-extra.conf web_start "$server" "$mode"
	# Warm up: managed servers start their processes lazily.
	for path in /robots.txt /bench/noop /api/v1/health; do
		wrk -t2 -c50 -d2s "$base$path" >/dev/null 2>&1
	done
	for c in $BENCH_CONNS; do
		static=0
		noop=0
		for target in static noop health; do
			case $target in
			static) path=/robots.txt ;;
			noop) path=/bench/noop ;;
			health) path=/api/v1/health ;;
			esac
			line=$(bench_wrk "$c" "$base$path")
			read -r rps p50 p99 err <<<"$line"
			[ "$target" = static ] && static=$rps
			[ "$target" = noop ] && noop=$rps
			printf '%-9s %-8s %-7s %6s %9s %8s %9s %7s %8s %8s\n' \
				"$server" "$mode" "$target" "$c" "$rps" "$p50" "$p99" "$err" \
				"$(awk -v a="$rps" -v b="$noop" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')" \
				"$(awk -v a="$rps" -v b="$static" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')" |
				tee -a "$BENCH_OUT"
		done
	done
	web_stop
	if [ -f "$RUNDIR/noop.pids" ]; then
		xargs kill < "$RUNDIR/noop.pids" 2>/dev/null || true
		rm -f "$RUNDIR/noop.pids" "$RUNDIR/noop.sock"
	fi
	rm -f "$STATE/bench-extra.conf"
}

bench_main() {
	local server mode
	command -v wrk >/dev/null || die "wrk is not installed"
	{
		echo "# ./dev bench, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, ${BENCH_SECONDS}s per run"
		printf '%-9s %-8s %-7s %6s %9s %8s %9s %7s %8s %8s\n' server mode target conns \
			req/s p50_ms p99_ms errors vs_noop vs_static
	} | tee "$BENCH_OUT"
	for server in $BENCH_SERVERS; do
		for mode in $BENCH_MODES; do
			web_stop
			bench_one "$server" "$mode"
		done
	done
	say "results in $BENCH_OUT"
}
