# bench.sh: the benchmarks behind ./dev bench, sourced by dev after the
# stack's database and memcached are up.
#
# For each web server (Apache, lighttpd) and process model (managed by the
# server, or a fixed pool on a shared socket) it measures with wrk, in one
# run: a static file and a do-nothing FastCGI program (the two ceilings),
# and GET /api/v1/health (one prepared query), at 50 and 500 connections;
# then POST /api/v1/orders against pgbench running the same transaction,
# and the catalog targets.  Last, once: agora-worker's rows per second
# against pgbench running the same batch SQL, and the latency from an
# order placed to paid, and the analytics summary of 30 days at 1,000,000
# events and 100,000 orders.  BENCH_SERVERS and BENCH_MODES narrow the run.
# Figures on a shared machine are noisy: read the ratios, which compare
# results of the same run.

# pgbench and psql call the functions this build's programs call: those
# of the release's schema (ctl/migrate.c), then public's.
PGOPTIONS="-c search_path=$(sed -n 's/^#define AGORA_FUNCTIONS_SCHEMA "\(.*\)"$/\1/p' \
	"$BUILD/config.h"),public"
export PGOPTIONS

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_PAIRS=${BENCH_PAIRS:-3}
BENCH_CONNS=${BENCH_CONNS:-"50 500"}
BENCH_SERVERS=${BENCH_SERVERS:-"apache lighttpd"}
BENCH_MODES=${BENCH_MODES:-"managed pool"}
BENCH_OUT=${BENCH_OUT:-$DEV/bench-results.txt}

# The do-nothing pool's size: what agora-fcgi-pool gives each program.
bench_procs() {
	"$PREFIX/sbin/agora-fcgi-pool" procs ${AGORA_POOL_PROCS:+-n "$AGORA_POOL_PROCS"} orders
}

# Configuration that trusts X-Forwarded-For from loopback, as a web host
# trusts HAProxy (README, "Running on several hosts"): bench/orders.lua
# gives each shopper an address of its own.
bench_forwarded() {
	case $1 in
	apache) printf 'RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy 127.0.0.1\n' ;;
	lighttpd) printf '%s\n' 'server.modules += ( "mod_extforward" )' \
		'extforward.forwarder = ( "127.0.0.1" => "trust" )' ;;
	esac
}

# Extra configuration that serves bench/noop at /bench/noop.
bench_extra() {
	bench_forwarded "$1"
	local server=$1 mode=$2 noop=$BUILD/bench/noop u=()
	if [ "$mode" = pool ]; then
		if is_root; then u=(-u www-data -g www-data -U www-data -G www-data); fi
		rm -f "$RUNDIR/noop.sock"
		spawn-fcgi -s "$RUNDIR/noop.sock" -F "$(bench_procs)" -M 0660 \
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

# Print "req/s p50_ms p99_ms errors" for one wrk run; $3 is a Lua script.
bench_wrk() {
	local script=()
	[ -n "${3:-}" ] && script=(-s "$3")
	# wrk needs a connection per thread at least.
	wrk -t"$([ "$1" -ge 2 ] && echo 2 || echo 1)" -c"$1" -d"${BENCH_SECONDS}s" --latency \
		"${script[@]}" "$2" 2>&1 | awk '
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

bench_row() {
	printf '%-9s %-8s %-15s %6s %9s %8s %9s %7s %8s %8s\n' "$@" | tee -a "$BENCH_OUT"
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }'
}

# Run a catalog target and the do-nothing program in turn, BENCH_PAIRS
# times, so that each ratio compares two runs a few seconds apart on this
# noisy machine; print "vs_noop req/s p50 p99 errors" of the median run,
# by the ratio (by p99 when $3 is p99).
bench_paired() {
	local url=$1 script=${2:-} by=${3:-ratio} base=http://127.0.0.1:$HTTP_PORT
	local i n rps p50 p99 err key
	key=1
	[ "$by" = p99 ] && key=4
	for i in $(seq 1 "$BENCH_PAIRS"); do
		read -r n _ <<<"$(bench_wrk 50 "$base/bench/noop")"
		read -r rps p50 p99 err <<<"$(bench_wrk 50 "$url" "$script")"
		echo "$(ratio "$rps" "$n") $rps $p50 $p99 $err"
	done | sort -n -k"$key" | sed -n "$(((BENCH_PAIRS + 1) / 2))p"
}

# One catalog row from bench_paired's output.
bench_catalog_row() {
	local server=$1 mode=$2 target=$3 static=$4 vs rps p50 p99 err
	read -r vs rps p50 p99 err <<<"$5"
	bench_row "$server" "$mode" "$target" 50 "$rps" "$p50" "$p99" "$err" \
		"$vs" "$(ratio "$rps" "$static")"
}

# The catalog targets at 50 connections: a cached product read and a mix
# of searches (bench/search.lua) with the cache warm, then, with the cache
# off (AGORA_MEMCACHED_SERVERS empty), random product reads and the same
# searches, all against the 100,000-product catalog.  Each is paired with
# runs of the do-nothing program (bench_paired); the search rows show the
# run with the median p99.
bench_catalog() {
	local server=$1 mode=$2 static=$3 base=http://127.0.0.1:$HTTP_PORT
	local id target script by
	id=$(psql -qAt "$ADMIN_URL" -c "SELECT min(id) FROM products WHERE sku LIKE 'SEED-%' AND archived_at IS NULL")
	wrk -t2 -c50 -d2s "$base/api/v1/products/$id" >/dev/null 2>&1
	bench_catalog_row "$server" "$mode" product-cached "$static" \
		"$(bench_paired "$base/api/v1/products/$id")"
	wrk -t2 -c50 -d2s -s "$TOP/bench/search.lua" "$base" >/dev/null 2>&1
	bench_catalog_row "$server" "$mode" search-cached "$static" \
		"$(bench_paired "$base" "$TOP/bench/search.lua" p99)"
	web_stop
	# Stopping the pool stopped the do-nothing pool too: start it again.
	bench_extra "$server" "$mode" > "$STATE/bench-extra.conf"
	AGORA_MEMCACHED_SERVERS= BENCH_INCLUDE=$STATE/bench-extra.conf \
		web_start "$server" "$mode" 2>/dev/null
	wrk -t2 -c50 -d2s "$base/bench/noop" >/dev/null 2>&1
	for target in product-nocache search-nocache; do
		case $target in
		product-*) script=$TOP/bench/product.lua by=ratio ;;
		search-*) script=$TOP/bench/search.lua by=p99 ;;
		esac
		wrk -t2 -c50 -d2s -s "$script" "$base" >/dev/null 2>&1
		bench_catalog_row "$server" "$mode" "$target" "$static" \
			"$(bench_paired "$base" "$script" "$by")"
	done
}

# What the metrics add to a request (bench/metrics_cost: the adds to a
# real metrics file and the clock read, timed directly, since wrk cannot
# tell a few tens of nanoseconds from its noise), as a share of the
# machine's time per request of the do-nothing program at 50 connections
# in this run (1 / its req/s).  Goal: under 2%.
bench_metrics_cost() {
	local server=$1 mode=$2 noop=$3 dir ns
	dir=$(mktemp -d)
	ns=$("$BUILD/bench/metrics_cost" "$dir" | awk '{ print $2 }')
	rm -rf "$dir"
	echo "$server $mode: metrics cost ${ns} ns per request = $(awk -v ns="$ns" -v r="$noop" \
		'BEGIN { printf (r > 0 ? "%.2f%%" : "-"), ns * r / 1e7 }') of the do-nothing program's time per request" |
		tee -a "$BENCH_OUT"
}

# An access token of the bench user $1 (an email) from the running stack.
bench_login() {
	curl -fsS -H 'Content-Type: application/json' \
		-d "{\"email\":\"$1\",\"password\":\"bench password 1\"}" \
		"http://127.0.0.1:$HTTP_PORT/api/v1/auth/login" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# An access token of the bench customer, for the running stack.
bench_token() {
	ORDER_TOKEN=$(bench_login bench@example.com)
	export ORDER_TOKEN
}

# --- orders ---------------------------------------------------------------
#
# Two workloads, each order two lines of one unit by one of ORDER_USERS
# shoppers, each with an address of its own: the flash sale (two of 50
# hot products) and the spread (two of the 100,000 seeded products, drawn
# Zipf-like).  Each is measured through the web server against the best
# pgbench figure over 1 to 64 clients of the same SQL (bench/orders.sql),
# and that against the best of the least an order can be
# (bench/order_min.sql).  Before each run the shoppers' pending orders
# expire, so every run starts from none.
ORDER_USERS=${ORDER_USERS:-200}
ORDER_CLIENTS=${ORDER_CLIENTS:-"1 2 4 8 16 32 64"}

# The shoppers' access tokens, "user_id token" a line, in ORDER_TOKENS;
# made again when older than 5 minutes (tokens live 15).
bench_order_tokens() {
	local f=$STATE/bench-order-tokens
	export ORDER_TOKENS=$f
	[ -n "$(find "$f" -mmin -5 2>/dev/null)" ] && return
	export -f bench_login
	export HTTP_PORT
	# shellcheck disable=SC2016 # the child shell expands them
	psql -qAt -F ' ' "$ADMIN_URL" -c "SELECT id, email FROM users
		WHERE id BETWEEN $UMIN AND $UMAX AND email ~ '^bench-[0-9]+@' ORDER BY id" |
		xargs -P 4 -n 2 bash -c 'echo "$1 $(bench_login "$2")"' - > "$f.new"
	[ "$(awk 'NF == 2' "$f.new" | wc -l)" -eq "$ORDER_USERS" ] ||
		die "bench: not every bench shopper could sign in (see $f.new)"
	mv "$f.new" "$f"
}

# Expire the shoppers' pending orders, releasing their stock.
bench_order_reset() {
	psql -qAt "$ADMIN_URL" -c "UPDATE orders SET expires_at = now()
		WHERE status = 'pending' AND user_id BETWEEN $UMIN AND $UMAX" >/dev/null
	while [ "$(psql -qAt "$ADMIN_URL" -c "SELECT count(*) FROM orders_expire(2000)")" -gt 0 ]; do
		:
	done
}

# The best of bench_pgbench over ORDER_CLIENTS clients: "tps clients".
bench_order_best() {
	local script=$1 c tps best=0 at=0
	for c in $ORDER_CLIENTS; do
		bench_order_reset
		tps=$(bench_pgbench prepared "$c" "$script" "$APP_URL")
		if [ "${tps:-0}" -gt "$best" ]; then best=$tps; at=$c; fi
	done
	echo "$best $at"
}

# The pgbench references of both workloads, once a run: ORDER_REF[w]
# (bench/orders.sql) and ORDER_MIN[w] (bench/order_min.sql).
declare -A ORDER_REF ORDER_MIN
bench_order_refs() {
	local w best at
	for w in flash spread; do
		[ -n "${ORDER_REF[$w]:-}" ] && continue
		ORDER_SPREAD=$([ "$w" = spread ] && echo 1 || echo 0)
		read -r best at <<<"$(bench_order_best "$TOP/bench/order_min.sql")"
		bench_row pgbench - "order-min-$w" "$at" "$best" - - 0 - -
		ORDER_MIN[$w]=$best
		read -r best at <<<"$(bench_order_best "$TOP/bench/orders.sql")"
		bench_row pgbench - "orders-$w" "$at" "$best" - - 0 - -
		ORDER_REF[$w]=$best
		echo "orders, $w: pgbench of agora's SQL / of the least order =" \
			"$(ratio "$best" "${ORDER_MIN[$w]}")" | tee -a "$BENCH_OUT"
	done
}

# Both workloads at 50 connections through the running web server.
bench_orders_at() {
	local server=$1 mode=$2 noop=$3 base=http://127.0.0.1:$HTTP_PORT
	local w line rps p50 p99 err
	bench_order_refs
	bench_order_tokens
	for w in flash spread; do
		export ORDER_SPREAD
		ORDER_SPREAD=$([ "$w" = spread ] && echo 1 || echo 0)
		bench_order_reset
		wrk -t2 -c50 -d2s -s "$TOP/bench/orders.lua" "$base" >/dev/null 2>&1
		bench_order_reset
		line=$(bench_wrk 50 "$base" "$TOP/bench/orders.lua")
		read -r rps p50 p99 err <<<"$line"
		bench_row "$server" "$mode" "orders-$w" 50 "$rps" "$p50" "$p99" "$err" \
			"$(ratio "$rps" "$noop")" -
		echo "$server $mode: orders, $w / best pgbench = $(ratio "$rps" "${ORDER_REF[$w]}")" |
			tee -a "$BENCH_OUT"
	done
	bench_order_reset
}

# ./dev bench orders: the references, and lighttpd with the pool.
bench_orders() {
	web_stop
	bench_forwarded lighttpd > "$STATE/bench-extra.conf"
	BENCH_INCLUDE=$STATE/bench-extra.conf web_start lighttpd pool
	bench_orders_at lighttpd pool -
	web_stop
	rm -f "$STATE/bench-extra.conf"
}

bench_one() {
	local server=$1 mode=$2 base=http://127.0.0.1:$HTTP_PORT c target path
	local static noop line rps p50 p99 err noop50=0 static50=0
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
			if [ "$target" = static ]; then static=$rps; fi
			if [ "$target" = noop ]; then noop=$rps; fi
			bench_row "$server" "$mode" "$target" "$c" "$rps" "$p50" "$p99" \
				"$err" "$(ratio "$rps" "$noop")" "$(ratio "$rps" "$static")"
		done
		if [ "$c" = 50 ]; then noop50=$noop; static50=$static; fi
	done
	bench_metrics_cost "$server" "$mode" "$noop50"
	bench_orders_at "$server" "$mode" "$noop50"
	bench_catalog "$server" "$mode" "$static50"
	web_stop
	bench_noop_stop
}

bench_noop_stop() {
	if [ -f "$RUNDIR/noop.pids" ]; then
		xargs kill < "$RUNDIR/noop.pids" 2>/dev/null || true
		rm -f "$RUNDIR/noop.pids" "$RUNDIR/noop.sock"
	fi
	rm -f "$STATE/bench-extra.conf"
}

# ./dev bench search: the catalog targets alone (product reads and the
# search mix, cache on and off), on lighttpd with the pool.
bench_search() {
	local static
	web_stop
	bench_extra lighttpd pool > "$STATE/bench-extra.conf"
	BENCH_INCLUDE=$STATE/bench-extra.conf web_start lighttpd pool
	wrk -t2 -c50 -d2s "http://127.0.0.1:$HTTP_PORT/robots.txt" >/dev/null 2>&1
	read -r static _ <<<"$(bench_wrk 50 "http://127.0.0.1:$HTTP_PORT/robots.txt")"
	bench_catalog lighttpd pool "$static"
	web_stop
	bench_noop_stop
}

# N orders of the bench customer, each with a tok_visa payment queued.
bench_paid_orders() {
	psql -qAt "$ADMIN_URL" -c "SELECT count(order_place($ORDER_UID,
		ARRAY[$ORDER_PMIN], ARRAY[1], NULL,
		'{\"method\": \"card\", \"token\": \"tok_visa\"}', 3600))
		FROM generate_series(1, $1)" >/dev/null
}

# The worker targets: rows per second through two agora-worker --once
# with the simulated gateway, against pgbench running the same claim,
# charge and finish SQL (bench/outbox.sql) with two clients; then the
# latency from an order placed to paid, with agora-worker --loop waiting
# on LISTEN.
bench_worker() {
	local n=10000 t0 t1 rps pg lat a loop
	bench_paid_orders "$n"
	t0=$(date +%s.%N)
	pgbench -n -M prepared -c 2 -j 2 -t $((n / 200)) -f "$TOP/bench/outbox.sql" \
		"$APP_URL" >/dev/null 2>&1
	t1=$(date +%s.%N)
	pg=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
	bench_row worker - outbox-pgbench 2 "$pg" - - 0 - -
	bench_paid_orders "$n"
	t0=$(date +%s.%N)
	"$PREFIX/sbin/agora-worker" --once --topics payment.charge,payment.refund 2>/dev/null &
	a=$!
	"$PREFIX/sbin/agora-worker" --once --topics payment.charge,payment.refund 2>/dev/null
	# Only this child: the stack's services are children of the shell too.
	wait "$a"
	t1=$(date +%s.%N)
	rps=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
	bench_row worker - outbox-engine 2 "$rps" - - 0 - -
	echo "worker: engine / pgbench = $(ratio "$rps" "$pg")" | tee -a "$BENCH_OUT"
	"$PREFIX/sbin/agora-worker" --loop --deadline 120 --topics payment.charge,payment.refund 2>/dev/null &
	loop=$!
	sleep 1
	for _ in $(seq 1 200); do
		curl -fsS -o /dev/null -H 'Content-Type: application/json' \
			-H "Authorization: Bearer $ORDER_TOKEN" \
			-d "{\"items\":[{\"product_id\":\"$ORDER_PMIN\",\"quantity\":1}],\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"}}" \
			"http://127.0.0.1:$HTTP_PORT/api/v1/orders"
		sleep 0.02
	done
	sleep 1
	kill "$loop" 2>/dev/null
	wait "$loop"
	lat=$(psql -qAt -F ' ' "$ADMIN_URL" -c "SELECT
		round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d) * 1000)::numeric, 1),
		round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d) * 1000)::numeric, 1), count(*)
		FROM (SELECT extract(epoch FROM p.at - e.at) AS d FROM order_events e
		JOIN order_events p ON p.order_id = e.order_id AND p.status = 'paid'
		WHERE e.seq = 1 AND e.order_id IN (SELECT id FROM orders
		WHERE user_id = $ORDER_UID ORDER BY id DESC LIMIT 200)) s")
	echo "worker: order placed -> paid, --loop: p50/p99 ms, orders: $lat" | tee -a "$BENCH_OUT"
	# The paid orders' invoices and mails are not measured here; drop
	# them rather than leave 20,000 PDFs for the next run of the stack.
	psql -qAt "$ADMIN_URL" -c "DELETE FROM outbox WHERE topic NOT LIKE 'payment.%'" >/dev/null
}

# A customer, ORDER_USERS shoppers with the same password, 50 products
# whose stock the orders never exhaust, and the seeded products' stock
# raised to a million units free (the spread workload's).
bench_order_setup() {
	"$PREFIX/sbin/agoractl" user add --email bench@example.com --name Bench \
		--password-stdin <<<"bench password 1" >/dev/null 2>&1 || true
	psql -qAt "$ADMIN_URL" >/dev/null <<-SQL
		INSERT INTO products (sku, name, price_cents)
		SELECT 'BENCH-ORDER-' || g, 'Bench item ' || g, 100 + g
		FROM generate_series(1, 50) g ON CONFLICT (sku) DO NOTHING;
		INSERT INTO inventory (product_id, on_hand)
		SELECT id, 1000000000 FROM products WHERE sku LIKE 'BENCH-ORDER-%'
		ON CONFLICT (product_id) DO UPDATE SET on_hand = 1000000000;
	SQL
	export ORDER_PMIN ORDER_PMAX ORDER_UID
	read -r ORDER_PMIN ORDER_PMAX <<<"$(psql -qAt -F ' ' "$ADMIN_URL" -c \
		"SELECT min(id), max(id) FROM products WHERE sku LIKE 'BENCH-ORDER-%'")"
	ORDER_UID=$(psql -qAt "$ADMIN_URL" -c "SELECT id FROM users WHERE email = 'bench@example.com'")
	psql -qAt "$ADMIN_URL" >/dev/null <<-SQL
		INSERT INTO users (email, name, password_hash)
		SELECT 'bench-' || g || '@example.com', 'Bench shopper ' || g,
			(SELECT password_hash FROM users WHERE id = $ORDER_UID)
		FROM generate_series(1, $ORDER_USERS) g ON CONFLICT (email) DO NOTHING;
		UPDATE inventory SET on_hand = reserved + 1000000
		WHERE on_hand - reserved < 1000000 AND product_id IN
			(SELECT id FROM products WHERE sku LIKE 'SEED-%');
	SQL
	export UMIN UMAX
	read -r UMIN UMAX <<<"$(psql -qAt -F ' ' "$ADMIN_URL" -c "SELECT min(id), max(id)
		FROM users WHERE email ~ '^bench-[0-9]+@example.com$'
		AND split_part(substr(email, 7), '@', 1)::int <= $ORDER_USERS")"
}

# The analytics summary at 1,000,000 events and 100,000 orders over the
# last 30 days (agoractl seed makes what is missing, once): GET
# /api/v1/analytics/summary of those 30 days by an admin, one request at
# a time (a dashboard's load; goal: p99 under 50 ms) and at 4
# connections, beside GET /api/v1/health (one prepared query) in the same
# run.
bench_summary() {
	local base=http://127.0.0.1:$HTTP_PORT n e args=() h c rps p50 p99 err
	n=$(psql -qAt "$ADMIN_URL" -c "SELECT count(*) FROM orders")
	e=$(psql -qAt "$ADMIN_URL" -c "SELECT count(*) FROM analytics_events")
	[ "$n" -lt 100000 ] && args+=(--orders $((100000 - n)))
	[ "$e" -lt 1000000 ] && args+=(--events $((1000000 - e)))
	if [ ${#args[@]} -gt 0 ]; then
		say "seeding ${args[*]} over 30 days"
		"$PREFIX/sbin/agoractl" seed "${args[@]}" --days 30 >/dev/null
	fi
	"$PREFIX/sbin/agoractl" user add --email bench-admin@example.com --name Bench \
		--role admin --password-stdin <<<"bench password 1" >/dev/null 2>&1 || true
	SUMMARY_TOKEN=$(curl -fsS -H 'Content-Type: application/json' \
		-d '{"email":"bench-admin@example.com","password":"bench password 1"}' \
		"$base/api/v1/auth/login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	export SUMMARY_TOKEN
	wrk -t1 -c1 -d2s -s "$TOP/bench/summary.lua" "$base" >/dev/null 2>&1
	for c in 1 4; do
		read -r h _ <<<"$(bench_wrk "$c" "$base/api/v1/health")"
		read -r rps p50 p99 err <<<"$(bench_wrk "$c" "$base" "$TOP/bench/summary.lua")"
		bench_row summary - summary-30d "$c" "$rps" "$p50" "$p99" "$err" - -
		echo "summary at $c connection(s): req/s vs health = $(ratio "$rps" "$h");" \
			"p99 $p99 ms (goal at 1: under 50 ms)" | tee -a "$BENCH_OUT"
	done
}

# pgbench's transactions per second: $1 the protocol (prepared: named
# statements, as the programs prepare them; extended: unnamed ones, parsed
# and planned each time), $2 clients, $3 the script, $4 the connection
# string.
bench_pgbench() {
	pgbench -n -M "$1" -c "$2" -j 2 -T "$BENCH_SECONDS" -D idmin="$ID_MIN" -D idmax="$ID_MAX" \
		-D pmin="$ORDER_PMIN" -D pmax="$ORDER_PMAX" -D uid="$ORDER_UID" \
		-D umin="$UMIN" -D umax="$UMAX" -D spread="${ORDER_SPREAD:-0}" -f "$3" "$4" 2>/dev/null |
		awk '/^tps/ { tps = $3 } END { printf "%.0f\n", tps }'
}

# pgbouncer 1.18 on PG_PORT + 5, transaction pooling with $1 server
# connections.  It passes no session settings, so the release's
# search_path is each server connection's connect_query.
pgbouncer_start() {
	local d=$STATE/pgbouncer schema
	schema=$(sed -n 's/^#define AGORA_FUNCTIONS_SCHEMA "\(.*\)"$/\1/p' "$BUILD/config.h")
	mkdir -p "$d"
	if is_root; then chown postgres "$d"; fi
	echo '"agora_app" ""' > "$d/users.txt"
	cat > "$d/pgbouncer.ini" <<-EOF
		[databases]
		agora = host=$PG_SOCK port=$PG_PORT dbname=agora connect_query='SET search_path = $schema, public'
		[pgbouncer]
		listen_addr = 127.0.0.1
		listen_port = $((PG_PORT + 5))
		unix_socket_dir =
		auth_type = trust
		auth_file = $d/users.txt
		pool_mode = transaction
		default_pool_size = $1
		max_client_conn = 2000
		ignore_startup_parameters = extra_float_digits,options
		pidfile = $d/pgbouncer.pid
		logfile = $d/pgbouncer.log
	EOF
	pgbouncer_stop
	as_pg pgbouncer -d -q "$d/pgbouncer.ini" || die "pgbouncer did not start (see $d/pgbouncer.log)"
	wait_port $((PG_PORT + 5)) || die "pgbouncer is not listening"
}

pgbouncer_stop() {
	pidfile_stop "$STATE/pgbouncer/pgbouncer.pid"
}

# The connection budget (README, "Running on several hosts"): what the
# programs' named prepared statements are worth over the unnamed ones a
# transaction-pooling pgbouncer 1.18 would force (it cannot keep a named
# statement across server connections), for a product read and an order,
# and what pgbouncer costs, at 50 clients and at 250 (more backends than
# a small database host should run).
bench_connections() {
	local bouncer="host=127.0.0.1 port=$((PG_PORT + 5)) dbname=agora user=agora_app"
	local f c prep unnamed pgb
	pgbouncer_start 8
	for f in product orders; do
		for c in 50 250; do
			prep=$(bench_pgbench prepared "$c" "$TOP/bench/$f.sql" "$APP_URL")
			unnamed=$(bench_pgbench extended "$c" "$TOP/bench/$f.sql" "$APP_URL")
			pgb=$(bench_pgbench extended "$c" "$TOP/bench/$f.sql" "$bouncer")
			bench_row pgbench - "$f-prepared" "$c" "$prep" - - - - -
			bench_row pgbench - "$f-unnamed" "$c" "$unnamed" - - - - -
			bench_row pgbench - "$f-pgbouncer" "$c" "$pgb" - - - - -
			echo "connections: $f at $c clients: unnamed / prepared = $(ratio "$unnamed" "$prep")," \
				"pgbouncer (8 server connections, unnamed) / prepared = $(ratio "$pgb" "$prep")" |
				tee -a "$BENCH_OUT"
		done
	done
	pgbouncer_stop
}

# Until HAProxy calls web host $1 $2 (UP or DOWN).
bench_lb_wait() {
	local i
	for i in $(seq 1 100); do
		cl_lb_states | grep -qx "$1 $2" && return 0
		sleep 0.2
	done
	die "HAProxy does not call $1 $2"
}

# The web hosts again, each with agora.conf's lines "key = value" $@ in
# place of the key's own.
bench_cluster_conf() {
	local h f kv
	for h in web1 web2; do
		f=$CL_DIR/$h/agora.conf
		[ -f "$f.orig" ] || cp -p "$f" "$f.orig"
		cp -p "$f.orig" "$f"
		for kv in "$@"; do
			sed -i "/^${kv%% *} *=/d" "$f"
			echo "$kv" >> "$f"
		done
		cl_ctl "$h" kill
	done
	cl_ctl web1 start
	cl_ctl web2 start
	bench_lb_wait web1 UP
	bench_lb_wait web2 UP
}

# One run through HAProxy: row label $1, what it served ($2), target $3,
# URL $4, script $5, against web1's direct rate $6.
bench_cluster_lb() {
	local rps p50 p99 err
	read -r rps p50 p99 err <<<"$(bench_wrk 50 "$4" "$5")"
	bench_row cluster "$1" "$3" 50 "$rps" "$p50" "$p99" "$err" - -
	echo "cluster: $3 through HAProxy to $2 / web1 directly = $(ratio "$rps" "$6")" |
		tee -a "$BENCH_OUT"
}

# The cluster (tests/cluster.sh) with 100,000 products: health, a product
# read and the search mix at 50 connections, on web1 directly (no
# balancer), then through HAProxy with both web hosts and with web1 alone
# (web2 killed); then the search mix with the cache off, with and without
# the replica for reads.  Every host shares this machine's cores, so a
# second web host adds cost and proves the balancing, not speed.
bench_cluster() {
	local lb web1 t url script line rps p50 p99 err direct
	lb=http://$(cl_ip lb) web1=http://$(cl_ip web1)
	say "seeding 100,000 products on the cluster"
	AGORA_CONFIG=$CL_DIR/db1/agora.conf "$PREFIX/sbin/agoractl" seed --products 100000 >/dev/null
	read -r ID_MIN ID_MAX <<<"$(psql -qAt -F ' ' -h "$(cl_ip db1)" -U postgres -d agora -c \
		"SELECT min(id), max(id) FROM products WHERE sku LIKE 'SEED-%'")"
	export ID_MIN ID_MAX
	for t in health product search; do
		case $t in
		health) url=/api/v1/health script= ;;
		product) url= script=$TOP/bench/product.lua ;;
		search) url= script=$TOP/bench/search.lua ;;
		esac
		read -r direct p50 p99 err <<<"$(bench_wrk 50 "$web1$url" "$script")"
		bench_row cluster web1 "$t" 50 "$direct" "$p50" "$p99" "$err" - -
		bench_cluster_lb lb-2web "two web hosts" "$t" "$lb$url" "$script" "$direct"
		cl_ctl web2 kill
		bench_lb_wait web2 DOWN
		bench_cluster_lb lb-1web "web1 alone" "$t" "$lb$url" "$script" "$direct"
		cl_ctl web2 start
		bench_lb_wait web2 UP
	done
	bench_cluster_conf "memcached_servers ="
	read -r direct p50 p99 err <<<"$(bench_wrk 50 "$lb" "$TOP/bench/search.lua")"
	bench_row cluster replica search-nocache 50 "$direct" "$p50" "$p99" "$err" - -
	bench_cluster_conf "memcached_servers =" "database_read_url ="
	read -r rps p50 p99 err <<<"$(bench_wrk 50 "$lb" "$TOP/bench/search.lua")"
	bench_row cluster primary search-nocache 50 "$rps" "$p50" "$p99" "$err" - -
	echo "cluster: uncached search, replica and primary / primary alone = $(ratio "$direct" "$rps")" |
		tee -a "$BENCH_OUT"
}

bench_main() {
	local server mode
	command -v wrk >/dev/null || die "wrk is not installed"
	{
		echo "# ./dev bench, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, ${BENCH_SECONDS}s per run"
		printf '%-9s %-8s %-15s %6s %9s %8s %9s %7s %8s %8s\n' server mode target conns \
			req/s p50_ms p99_ms errors vs_noop vs_static
	} | tee "$BENCH_OUT"
	n=$(psql -qAt "$ADMIN_URL" -c "SELECT count(*) FROM products WHERE sku LIKE 'SEED-%'")
	if [ "$n" -lt 100000 ]; then
		say "seeding 100,000 products"
		"$PREFIX/sbin/agoractl" seed --products 100000 >/dev/null
	fi
	bench_order_setup
	export ID_MIN ID_MAX
	read -r ID_MIN ID_MAX <<<"$(psql -qAt -F ' ' "$ADMIN_URL" -c "SELECT min(id), max(id) FROM products WHERE sku LIKE 'SEED-%'")"
	# A case by name (./dev bench connections) runs alone.
	if [ -n "${1:-}" ]; then
		"bench_$1"
		say "results in $BENCH_OUT"
		return
	fi
	for server in $BENCH_SERVERS; do
		for mode in $BENCH_MODES; do
			web_stop
			bench_one "$server" "$mode"
		done
	done
	web_stop
	web_start lighttpd pool
	bench_token
	bench_worker
	bench_summary
	web_stop
	say "results in $BENCH_OUT"
}

# --- the seeds' load test and the soak --------------------------------------
#
# The journey mix (bench/journey.lua) at LOAD_CONNS connections through the
# web server with the pool: 70% of the connections browse product and list
# pages, 15% search, 10% change carts and 5% check out paid by card, with
# the cache on and agora-worker --loop charging the payments and making the
# invoices.  Mail is left out: no SMTP server runs in the bench.  One wrk
# per kind runs at once, so that each kind has its own latencies.  Each
# connection is a shopper who thinks between requests (LOAD_THINK, in ms):
# without that pause the kinds' shares of the requests follow their
# latencies, not the mix (closed loop, the quick writes crowd out the
# reads), and a thousand people do not click without pause.
LOAD_CONNS=${LOAD_CONNS:-1000}
LOAD_SECONDS=${LOAD_SECONDS:-20}
LOAD_THINK=${LOAD_THINK:-"1000 500 250 125 0"}
SOAK_MINUTES=${SOAK_MINUTES:-30}
LOAD_TOPICS=payment.charge,payment.refund,invoice.create,order.created
# The workers, as the shipped cron file runs them: the charges in one, the
# slow work (invoices) in another, so that it never delays a charge.
LOAD_WORKERS="payment.charge,payment.refund invoice.create,order.created"
LOAD_KINDS=${LOAD_KINDS:-"browse search cart checkout"}
LOAD_SERVERS=${LOAD_SERVERS:-"lighttpd apache"}

# The connections of kind $1 out of $2.
load_share() {
	case $1 in
	browse) echo $(($2 * 70 / 100)) ;;
	search) echo $(($2 * 15 / 100)) ;;
	cart) echo $(($2 * 10 / 100)) ;;
	checkout) echo $(($2 - $2 * 95 / 100)) ;;
	esac
}

# Run the mix for $1 seconds (with $2 ms between a connection's requests,
# when given); print journey.lua's line of each kind.
load_mix() {
	local secs=$1 pause=${2:-} kind out=$RUNDIR/journey pids=()
	rm -f "$out".*
	for kind in $LOAD_KINDS; do
		JOURNEY_KIND=$kind JOURNEY_DELAY_MS=$pause \
			wrk -t1 -c"$(load_share "$kind" "$LOAD_CONNS")" -d"${secs}s" --timeout 10s \
			-s "$TOP/bench/journey.lua" "http://127.0.0.1:$HTTP_PORT" > "$out.$kind" 2>&1 &
		pids+=($!)
	done
	for kind in "${pids[@]}"; do
		wait "$kind" || true
	done
	# A wrk that gave no summary counts as one error, and its latencies as
	# 10 s (its timeout): such a step never passes.
	for kind in $LOAD_KINDS; do
		grep '^journey ' "$out.$kind" || echo "journey $kind 0 0 10000 10000 10000 1"
	done
}

# The kilobytes of memory (PSS: shared pages divided among their sharers),
# "sum max count", of the processes whose command line matches the
# extended regular expression $1.
load_rss() {
	local pid
	ps -eo pid=,args= | awk -v re="$1" '{ a = $0; sub(/^ *[0-9]+ /, "", a) } a ~ re { print $1 }' |
		while read -r pid; do
			awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null
		done | awk '{ s += $1; if ($1 > m) m = $1; n++ } END { printf "%d %d %d\n", s, m, n }'
}

# The open descriptors of the stack's programs, web server and database.
load_fds() {
	local pid n=0
	for pid in $(pgrep -f "$PREFIX/|lighttpd|apache2|postgres"); do
		n=$((n + $(find "/proc/$pid/fd" -mindepth 1 2>/dev/null | wc -l)))
	done
	echo "$n"
}

# The workers' lag: the age in seconds of the oldest row of the topics $1
# (default: all of LOAD_TOPICS) still in the outbox (0: none; -1: the
# database did not answer).
load_lag() {
	psql -qAt "$ADMIN_URL" -c "SELECT coalesce(round(extract(epoch FROM
		now() - min(created_at))::numeric, 1), 0) FROM outbox
		WHERE topic = ANY (string_to_array('${1:-$LOAD_TOPICS}', ','))" 2>/dev/null || echo -1
}

# The database's, the outbox's and the reservations' sizes in kB.
soak_sizes() {
	psql -qAt -F ' ' "$ADMIN_URL" -c "SELECT pg_database_size(current_database()) / 1024,
		pg_total_relation_size('outbox') / 1024,
		pg_total_relation_size('reservations') / 1024" 2>/dev/null || echo -1 -1 -1
}

# "programs web postgres memcached", each "sum max count" of RSS in kB.
load_memory() {
	echo "$(load_rss "^$PREFIX/")" "$(load_rss '^(/usr/sbin/)?(lighttpd|apache2)')" \
		"$(load_rss '^postgres|/bin/[p]ostgres ')" "$(load_rss '^memcached')"
}

# Start the web server with the pool, the shoppers' tokens, the category
# list and the workers (agora-worker --loop) for $1 seconds.
load_start() {
	web_stop
	bench_forwarded "$SERVER" > "$STATE/bench-extra.conf"
	BENCH_INCLUDE=$STATE/bench-extra.conf web_start "$SERVER" pool
	bench_order_tokens
	bench_order_reset
	# What an interrupted run left would count as lag.
	psql -qAt "$ADMIN_URL" -c "DELETE FROM cart_items WHERE user_id BETWEEN $UMIN AND $UMAX;
		DELETE FROM outbox" >/dev/null
	JOURNEY_CATEGORIES=$(psql -qAt "$ADMIN_URL" -c "SELECT string_agg(id::text, ',')
		FROM (SELECT DISTINCT category_id AS id FROM products
		WHERE sku LIKE 'SEED-%' AND category_id IS NOT NULL LIMIT 12) c")
	export JOURNEY_CATEGORIES JOURNEY_SEARCH=$TOP/bench/search.lua
	local topics
	LOAD_WORKER=()
	for topics in $LOAD_WORKERS; do
		"$PREFIX/sbin/agora-worker" --loop --deadline "$1" --topics "$topics" \
			2>>"$RUNDIR/load-worker.log" &
		LOAD_WORKER+=($!)
	done
}

load_stop() {
	kill "${LOAD_WORKER[@]}" 2>/dev/null || true
	wait "${LOAD_WORKER[@]}" 2>/dev/null || true
	web_stop
	rm -f "$STATE/bench-extra.conf"
	bench_order_reset
	# The invoices and mails of the run's orders are not kept.
	psql -qAt "$ADMIN_URL" -c "DELETE FROM outbox" >/dev/null
}

# The steal time vmstat saw over $1 seconds, in percent.
load_steal() {
	vmstat "$1" 2 | awk 'NR == 4 { print $17 }'
}

# One step of the load: the mix for LOAD_SECONDS with each connection
# thinking $1 ms between its requests.  Prints the rows of each kind and
# leaves "req/s worst-p95 errors" of the step in $RUNDIR/load.step.
load_step() {
	local kind rps p50 p95 p99 err
	load_mix "$LOAD_SECONDS" "$1" > "$RUNDIR/load.kinds"
	while read -r _ kind _ rps p50 p95 p99 err; do
		printf 'load      %-8s think %4s ms %-9s %4s conns %6s req/s  p50 %7s  p95 %7s  p99 %7s ms  errors %s\n' \
			"$SERVER" "$1" "$kind" "$(load_share "$kind" "$LOAD_CONNS")" "$rps" "$p50" "$p95" \
			"$p99" "$err" | tee -a "$BENCH_OUT"
	done < "$RUNDIR/load.kinds"
	awk '{ s += $4; e += $8; if ($6 > w) w = $6 } END { printf "%.0f %.2f %d\n", s, w, e }' \
		"$RUNDIR/load.kinds" > "$RUNDIR/load.step"
}

# The load on $SERVER: one step per think time of LOAD_THINK (the first,
# a second, is the seeds' 1,000 users), the worker's lag and the memory
# of every process sampled every 5 seconds meanwhile.  The capacity, in
# $RUNDIR/load.rate, is the rate of the busiest step whose every kind
# kept p95 under 200 ms without an error.
load_at() {
	local think rate p95 err cap=0 lag mem steal sampler
	local steps
	read -r -a steps <<<"$LOAD_THINK"
	load_start $((LOAD_SECONDS * (${#steps[@]} + 1) + 60))
	load_mix 10 1000 >/dev/null
	steal=$(load_steal 2)
	(
		while :; do
			sleep 5
			echo "$(load_lag) $(load_memory)"
		done
	) > "$RUNDIR/load.samples" &
	sampler=$!
	for think in $LOAD_THINK; do
		load_step "$think"
		read -r rate p95 err < "$RUNDIR/load.step"
		echo "load      $SERVER think $think ms: all kinds $rate req/s, worst p95 $p95 ms, errors $err" |
			tee -a "$BENCH_OUT"
		if awk -v p="$p95" -v e="$err" -v r="$rate" -v c="$cap" \
			'BEGIN { exit !(p < 200 && e == 0 && r > c) }'; then
			cap=$rate
		fi
	done
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	lag=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$RUNDIR/load.samples")
	mem=$(awk '{ for (i = 2; i <= NF; i++) if ($i > m[i]) m[i] = $i }
		END { printf "programs %d MiB (largest %.1f, %d processes), web server %d MiB, PostgreSQL %d MiB (%d), memcached %d MiB",
			m[2] / 1024, m[3] / 1024, m[4], m[5] / 1024, m[8] / 1024, m[10], m[11] / 1024 }' \
		"$RUNDIR/load.samples")
	echo "load      $SERVER: capacity (p95 < 200 ms, no error) $cap req/s; worker lag at most" \
		"${lag} s; steal ${steal}%; peak PSS: $mem" | tee -a "$BENCH_OUT"
	echo "$cap" > "$RUNDIR/load.rate"
	load_stop
}

# ./dev bench load: the mix on lighttpd, then on Apache, each with the pool.
bench_load() {
	for SERVER in $LOAD_SERVERS; do
		load_at
	done
}

# ./dev bench soak: SOAK_MINUTES of the mix on lighttpd at half the rate
# load_at measures first (LOAD_RATE, when given, skips that), paced by a
# pause between each connection's requests.  Each minute is one run of the
# mix (its four kinds); after it, the memory, descriptors, table sizes and
# the workers' lag are sampled into $DEV/soak.dat, plotted into
# bench/soak.png.
bench_soak() {
	local rate pause m line
	SERVER=lighttpd
	PACKAGES=gnuplot-nox ensure_packages
	rate=${LOAD_RATE:-}
	if [ -z "$rate" ]; then
		load_at
		rate=$(cat "$RUNDIR/load.rate")
	fi
	[ "${rate:-0}" -gt 0 ] ||
		die "soak: no step of the load kept p95 under 200 ms; give the rate as LOAD_RATE"
	pause=$(awk -v c="$LOAD_CONNS" -v r="$rate" 'BEGIN { printf "%d", c * 1000 / (r / 2) }')
	echo "soak: $SOAK_MINUTES minutes at half of $rate req/s: $LOAD_CONNS connections," \
		"${pause} ms between a connection's requests; steal $(load_steal 2)%" | tee -a "$BENCH_OUT"
	load_start $((SOAK_MINUTES * 60 + 120))
	echo "# minute req/s p99_max_ms browse_p99 search_p99 cart_p99 checkout_p99 errors" \
		"programs_kb web_kb postgres_kb fds database_kb outbox_kb reservations_kb lag_s" \
		"charge_lag_s" \
		> "$DEV/soak.dat"
	for m in $(seq 1 "$SOAK_MINUTES"); do
		# Access tokens live 15 minutes: new ones when these are 5 old.
		bench_order_tokens
		load_mix 60 "$pause" > "$RUNDIR/load.kinds"
		line=$(awk '{ s += $4; e += $8; p[NR] = $7; if ($7 > x) x = $7 }
			END { printf "%.0f %.1f %s %s %s %s %d", s, x, p[1], p[2], p[3], p[4], e }' \
			"$RUNDIR/load.kinds")
		read -r -a mem <<<"$(load_memory)"
		echo "$m $line ${mem[0]} ${mem[3]} ${mem[6]} $(load_fds) $(soak_sizes) $(load_lag)" \
			"$(load_lag payment.charge,payment.refund)" >> "$DEV/soak.dat"
		tail -1 "$DEV/soak.dat"
	done
	load_stop
	soak_plot
	soak_summary | tee -a "$BENCH_OUT"
}

# bench/soak.png: rate and p99, memory, descriptors and sizes by minute.
soak_plot() {
	gnuplot <<-PLOT
		set terminal pngcairo size 1000,1200 font ",10"
		set output "$TOP/bench/soak.png"
		set multiplot layout 4,1 title "./dev bench soak: the journey mix at half capacity, lighttpd with the pool"
		set xlabel "minute"
		set key outside right
		set ylabel "req/s"; set y2label "p99 ms"; set ytics nomirror; set y2tics
		plot "$DEV/soak.dat" using 1:2 with linespoints title "req/s", \
			"" using 1:3 axes x1y2 with linespoints title "p99, worst kind"
		unset y2label; unset y2tics
		set ylabel "MiB"
		plot "$DEV/soak.dat" using 1:(\$9/1024) with linespoints title "programs (PSS)", \
			"" using 1:(\$10/1024) with linespoints title "web server (PSS)", \
			"" using 1:(\$11/1024) with linespoints title "PostgreSQL (PSS)"
		set ylabel "MiB / descriptors"
		plot "$DEV/soak.dat" using 1:(\$13/1024) with linespoints title "database MiB", \
			"" using 1:(\$14/1024) with linespoints title "outbox MiB", \
			"" using 1:(\$15/1024) with linespoints title "reservations MiB", \
			"" using 1:12 with linespoints title "open descriptors"
		set ylabel "seconds"
		plot "$DEV/soak.dat" using 1:16 with linespoints title "oldest outbox row (invoices)", \
			"" using 1:17 with linespoints title "oldest charge"
		unset multiplot
	PLOT
}

# The last minute against the first: is anything growing?
soak_summary() {
	awk '!/^#/ { n++; if (n == 1) split($0, f); split($0, l) }
		END {
			printf "soak: %d minutes; minute 1 -> %d: req/s %d -> %d, worst p99 %s -> %s ms, ", n, n, f[2], l[2], f[3], l[3]
			printf "errors %d -> %d, programs PSS %d -> %d MiB, PostgreSQL PSS %d -> %d MiB, ", f[8], l[8], f[9] / 1024, l[9] / 1024, f[11] / 1024, l[11] / 1024
			printf "descriptors %d -> %d, database %d -> %d MiB, outbox %d -> %d MiB, reservations %d -> %d MiB, ", f[12], l[12], f[13] / 1024, l[13] / 1024, f[14] / 1024, l[14] / 1024, f[15] / 1024, l[15] / 1024
			printf "lag %s -> %s s, of the charges %s -> %s s\n", f[16], l[16], f[17], l[17]
		}' "$DEV/soak.dat"
}
