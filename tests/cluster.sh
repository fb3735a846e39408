# shellcheck shell=bash
# tests/cluster.sh: agora on several hosts, built on this one machine out
# of Linux network namespaces (./dev cluster up|down|status; root only).
#
# Each host is a namespace with its own address on a private bridge that
# this script makes, and only those addresses and loopback are ever used:
#
#   lb     10.213.0.10  HAProxy, the one address clients use
#   web1   10.213.0.11  Apache, mod_fcgid managing the programs
#   web2   10.213.0.12  lighttpd, the programs in agora-fcgi-pool
#   db1    10.213.0.21  PostgreSQL, the primary
#   db2    10.213.0.22  PostgreSQL, a streaming replica (pg_basebackup)
#   db3    10.213.0.23  nothing, until a restore drill restores onto it
#                       (both database hosts archive their WAL with
#                       pgBackRest into $CL_DIR/backup, the repository)
#   mc1    10.213.0.31  memcached   mc2  10.213.0.32  memcached
#   wk1    10.213.0.41  agora-worker, as cron runs it;  wk2  10.213.0.42
#   peers  10.213.0.50  the S3-compatible server (invoices, uploads) and
#                       the fake payment gateway (the third party)
#
# The machine is 10.213.0.1 on the bridge: agoractl and the tests run
# there.  Every host runs the same installed agora, with an agora.conf of
# its own in $CL_DIR/HOST.  Sourced by ./dev after tests/stack.sh; run as
# "cluster.sh _in HOST FUNCTION" inside a namespace.

CL_NET=10.213.0
CL_BR=agora-br0
CL_HOSTS="lb web1 web2 db1 db2 db3 mc1 mc2 wk1 wk2 peers"
CL_GATEWAY_PORT=8090
CL_S3_PORT=4569

cl_ip() {
	case $1 in
	machine) echo "$CL_NET.1" ;;
	lb) echo "$CL_NET.10" ;;
	web1) echo "$CL_NET.11" ;;
	web2) echo "$CL_NET.12" ;;
	db1) echo "$CL_NET.21" ;;
	db2) echo "$CL_NET.22" ;;
	db3) echo "$CL_NET.23" ;;
	mc1) echo "$CL_NET.31" ;;
	mc2) echo "$CL_NET.32" ;;
	wk1) echo "$CL_NET.41" ;;
	wk2) echo "$CL_NET.42" ;;
	peers) echo "$CL_NET.50" ;;
	*) die "no host $1" ;;
	esac
}

cl_ns() { echo "agora-$1"; }

# The connection strings every host uses.  Both database hosts are named:
# libpq tries them in turn and keeps the one that takes writes (or, for
# reads, the standby first), so a promoted replica is found on the next
# reconnect without a configuration change (README, "Running on several
# hosts").
cl_db_url() {
	local user=$1 attrs=$2 first=$3 second=$4
	echo "host=$(cl_ip "$first"),$(cl_ip "$second") port=5432 dbname=agora user=$user connect_timeout=1 target_session_attrs=$attrs application_name=agora"
}

# --- the network ---------------------------------------------------------------

cl_net_up() {
	local h ns
	ip link add "$CL_BR" type bridge || die "cannot make the bridge $CL_BR"
	ip addr add "$(cl_ip machine)/24" dev "$CL_BR"
	ip link set "$CL_BR" up
	for h in $CL_HOSTS; do
		ns=$(cl_ns "$h")
		ip netns add "$ns"
		ip link add "agv-$h" type veth peer name eth0 netns "$ns"
		ip link set "agv-$h" master "$CL_BR" up
		ip -n "$ns" addr add "$(cl_ip "$h")/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" link set lo up
	done
}

# Every process of every host, then the hosts and the bridge: nothing is
# left behind.
cl_net_down() {
	local h ns pids i
	for h in $CL_HOSTS; do
		ns=$(cl_ns "$h")
		ip netns list 2>/dev/null | grep -qw "^$ns" || continue
		cl_kill "$h" TERM
	done
	for i in $(seq 1 50); do
		pids=
		for h in $CL_HOSTS; do
			ip netns list 2>/dev/null | grep -qw "^$(cl_ns "$h")" || continue
			pids="$pids$(ip netns pids "$(cl_ns "$h")")"
		done
		[ -z "$pids" ] && break
		sleep 0.1
	done
	for h in $CL_HOSTS; do
		ns=$(cl_ns "$h")
		ip netns list 2>/dev/null | grep -qw "^$ns" || continue
		cl_kill "$h" KILL
		# Until the killed are gone: a namespace deleted first would
		# live on, nameless, while one of them dies.
		for i in $(seq 1 50); do
			[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
			sleep 0.1
		done
		ip netns del "$ns"
		ip link del "agv-$h" 2>/dev/null || true
	done
	ip link del "$CL_BR" 2>/dev/null || true
}

# cl_kill HOST SIGNAL: every process of the host, as a crash would.
cl_kill() {
	local pids
	pids=$(ip netns pids "$(cl_ns "$1")" 2>/dev/null) || return 0
	[ -z "$pids" ] || kill -"$2" $pids 2>/dev/null || true
}

# cl_in HOST FUNCTION [ARGS]: run one of the h_ functions below inside
# the host.
cl_in() {
	local h=$1
	shift
	ip netns exec "$(cl_ns "$h")" env CL_DIR="$CL_DIR" PREFIX="$PREFIX" CGIDIR="$CGIDIR" \
		DEV="$DEV" CL_SYNC="${CL_SYNC:-}" \
		bash "$TOP/tests/cluster.sh" _in "$h" "$@"
}

# --- inside a host ---------------------------------------------------------------

# The stack.sh variables of host $1, as its functions expect them.
h_env() {
	STATE=$CL_DIR/$1
	RUNDIR=$(socket_dir run 72)
	PG_SOCK=$(socket_dir pgsock 80)
	HTTP_PORT=80 TLS_PORT=443 PG_PORT=5432 MC_PORT=11211
	BIND=0.0.0.0
	TLS=no
	export AGORA_CONFIG=$STATE/agora.conf
}

# The shipped backup/pgbackrest.conf, with this host's paths.
cl_pgbr_conf() {
	local dir=$CL_DIR/$1
	mkdir -p "$CL_DIR/backup"
	chown postgres "$CL_DIR/backup"
	sed -e "s|^repo1-path=.*|repo1-path=$CL_DIR/backup\\
log-path=$dir/pgbackrest\\
lock-path=$dir/pgbackrest\\
spool-path=$dir/pgbackrest|" \
		-e "s|^pg1-path=.*|pg1-path=$dir/pg\\
pg1-port=5432\\
pg1-socket-path=$(h_env "$1" && echo "$PG_SOCK")|" \
		"$PREFIX/share/agora/backup/pgbackrest.conf" > "$dir/pgbackrest.conf"
	mkdir -p "$dir/pgbackrest"
	chown postgres "$dir/pgbackrest"
}

# The WAL archived as the shipped configuration says (archive_timeout
# shorter: the drill does not wait a minute).
h_archive_opts() {
	echo "-c archive_mode=on -c archive_timeout=5 -c archive_command='pgbackrest --config=$STATE/pgbackrest.conf --stanza=agora archive-push %p'"
}

h_pgbackrest() {
	as_pg pgbackrest --config="$STATE/pgbackrest.conf" --stanza=agora "$@"
}

h_db1() {
	PG_LISTEN=$(cl_ip db1)
	PG_HBA_EXTRA="host all all $CL_NET.0/24 trust
host replication all $CL_NET.0/24 trust"
	# A replica cut off is noticed within seconds (doc/scale-out.md).
	PG_OPTS="-c wal_sender_timeout=5s -c max_wal_senders=10 -c wal_keep_size=256MB $(h_archive_opts)"
	pg_start
	h_pgbackrest stanza-create >/dev/null 2>&1 || h_pgbackrest stanza-upgrade >/dev/null ||
		die "pgbackrest stanza-create failed"
}

h_db2() {
	local bin dir=$STATE/pg
	bin=$(pgbin)
	mkdir -p "$STATE" "$PG_SOCK"
	chmod 755 "$STATE" "$PG_SOCK"
	chown postgres "$PG_SOCK"
	if [ ! -f "$dir/PG_VERSION" ]; then
		mkdir -p "$dir"
		chmod 700 "$dir"
		chown postgres "$dir"
		as_pg "$bin/pg_basebackup" -h "$(cl_ip db1)" -p 5432 -U postgres -D "$dir" \
			-R -X stream -c fast >/dev/null || die "pg_basebackup from db1 failed"
		rm -f "$dir/server.log"
		# Named, so that the primary can wait for it (synchronous).
		echo "primary_conninfo = 'host=$(cl_ip db1) port=5432 user=postgres application_name=db2'" |
			as_pg tee -a "$dir/postgresql.auto.conf" >/dev/null
	fi
	as_pg "$bin/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
		-o "-p 5432 -k $PG_SOCK -c listen_addresses=$(cl_ip db2) -c max_connections=300 -c wal_receiver_timeout=5s -c hot_standby=on $(h_archive_opts)" \
		start >/dev/null || die "the replica did not start (see $dir/server.log)"
}

# The restore drill's new host: the repository's newest backup, replayed
# to the time $1, then promoted.
h_restore() {
	local bin dir=$STATE/pg
	bin=$(pgbin)
	as_pg "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	mkdir -p "$dir" "$PG_SOCK"
	chmod 700 "$dir"
	chmod 755 "$STATE" "$PG_SOCK"
	chown postgres "$dir" "$PG_SOCK"
	h_pgbackrest restore --type=time "--target=$1" --target-action=promote >/dev/null ||
		die "pgbackrest restore failed"
	rm -f "$dir/server.log"
	as_pg "$bin/pg_ctl" -D "$dir" -w -t 120 -l "$dir/server.log" \
		-o "-p 5432 -k $PG_SOCK -c listen_addresses=$(cl_ip db3) -c max_connections=300 -c archive_mode=off" \
		start >/dev/null || die "the restored server did not start (see $dir/server.log)"
}

h_mc() {
	mkdir -p "$RUNDIR"
	memcached -l "$(cl_ip "$1")" -p 11211 -U 0 -m 64 -c 4096 -u memcache \
		>"$STATE/memcached.log" 2>&1 &
	echo $! > "$RUNDIR/memcached.pid"
}

h_peers() {
	mkdir -p "$STATE/s3"
	setsid "$DEV/node/node_modules/.bin/s3rver" -d "$STATE/s3" -a "$(cl_ip peers)" \
		-p "$CL_S3_PORT" -s --configure-bucket agora </dev/null >"$STATE/s3rver.log" 2>&1 &
	rm -f "$STATE/gateway.port"
	setsid python3 "$TOP/tests/fakegateway.py" "$STATE/gateway.port" "$CL_GATEWAY_PORT" \
		"$(cl_ip peers)" </dev/null >"$STATE/gateway.log" 2>&1 &
}

# The client's address through HAProxy's X-Forwarded-For, trusted from
# the balancer alone: rate limits count clients, not the balancer.
h_web_include() {
	local inc=$STATE/forwarded.conf
	if [ "$1" = apache ]; then
		printf 'RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy %s\n' "$(cl_ip lb)" > "$inc"
	else
		printf 'server.modules += ( "mod_extforward" )\nextforward.forwarder = ( "%s" => "trust" )\n' \
			"$(cl_ip lb)" > "$inc"
	fi
	WEB_INCLUDE=$inc
}

h_web() {
	h_web_include "$1"
	web_start "$1" "$2"
}

h_worker() {
	worker_start
}

h_lb() {
	local conf=$STATE/haproxy.cfg
	mkdir -p "$RUNDIR"
	cat > "$conf" <<-EOF
		# HAProxy in front of the web hosts (tests/cluster.sh).
		global
		    maxconn 4096
		    pidfile $RUNDIR/haproxy.pid
		defaults
		    mode http
		    timeout connect 2s
		    timeout client 60s
		    timeout server 60s
		    # A request that could not reach a host goes to another;
		    # one that reached it is never sent twice.
		    retries 2
		    option redispatch
		    option forwardfor
		    # Its own answers, as agora's: problem+json.
		    errorfile 502 $PREFIX/share/agora/httpd-conf/haproxy/502.http
		    errorfile 503 $PREFIX/share/agora/httpd-conf/haproxy/503.http
		    errorfile 504 $PREFIX/share/agora/httpd-conf/haproxy/504.http
		frontend agora
		    bind $(cl_ip lb):80
		    default_backend web
		backend web
		    balance roundrobin
		    option httpchk GET /api/v1/health/ready
		    http-check expect status 200
		    default-server inter 500ms fall 2 rise 2
		    server web1 $(cl_ip web1):80 check
		    server web2 $(cl_ip web2):80 check
		listen stats
		    bind $(cl_ip lb):8404
		    stats enable
		    stats uri /stats
	EOF
	haproxy -c -q -f "$conf" || die "haproxy.cfg does not parse"
	haproxy -D -f "$conf" || die "HAProxy did not start"
}

# --- on the machine ------------------------------------------------------------

# The agora.conf of host $1: the same for every host but its run_dir.
cl_config() {
	local h=$1 dir=$CL_DIR/$1 run
	mkdir -p "$dir/logs"
	chmod 755 "$dir"
	chown "$(web_user)" "$dir/logs"
	run=$(h_env "$h" && echo "$RUNDIR")
	mkdir -p "$run" "$CL_DIR/storage"
	chown "$(web_user)" "$run"
	(umask 027 && cat > "$dir/agora.conf") <<-EOF
		# Written by tests/cluster.sh for host $h.
		database_url = $(cl_db_url agora_app read-write db1 db2)
		database_read_url = $(cl_db_url agora_app prefer-standby db2 db1)
		database_read_max_lag_ms = 1000
		database_admin_url_file = $CL_DIR/admin.url
		memcached_servers = $(cl_ip mc1):11211, $(cl_ip mc2):11211
		storage = s3
		storage_dir = $CL_DIR/storage
		s3_endpoint = http://$(cl_ip peers):$CL_S3_PORT
		s3_bucket = agora
		s3_access_key_file = $CL_DIR/s3.access
		s3_secret_key_file = $CL_DIR/s3.secret
		run_dir = $run
		db_retry_after = 1
		jwt_secret_file = $CL_DIR/jwt.secret
		webhook_secret_file = $CL_DIR/webhook.secret
		public_url = http://$(cl_ip lb)
		payment_provider = http
		payment_gateway_url = http://$(cl_ip peers):$CL_GATEWAY_PORT
		payment_gateway_key_file = $CL_DIR/gateway.key
		# A worker that dies mid-batch holds its rows this long, which
		# must be twice the longest call a job makes.
		worker_lease_seconds = 10
		payment_timeout_ms = 4000
		notify_timeout_ms = 4000
		storage_timeout_ms = 4000
		worker_poll_ms = 500
		outbox_backoff_ms = 500
		# One machine's tests make every request.
		rate_limit_auth = 100000
		rate_limit_api = 1000000
		order_unpaid_max = 100000
		order_reserved_units_max = 100000000
		order_reserved_units_per_ip = 100000000
	EOF
	file_mode "$dir/agora.conf" web
}

cl_secrets() {
	mkdir -p "$CL_DIR"
	chmod 755 "$CL_DIR"
	secret_file "$CL_DIR/webhook.secret" "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" web
	secret_file "$CL_DIR/jwt.secret" "$(head -c 48 /dev/urandom | base64)" web
	secret_file "$CL_DIR/s3.access" S3RVER web
	secret_file "$CL_DIR/s3.secret" S3RVER web
	secret_file "$CL_DIR/gateway.key" sk_test_agora web
	rm -f "$CL_DIR/admin.url"
	secret_file "$CL_DIR/admin.url" "$(cl_db_url agora read-write db1 db2)"
}

# Wait until $2 answers on TCP port $3 from the machine (host $1).
cl_wait_port() {
	local i
	for i in $(seq 1 150); do
		(exec 3<>"/dev/tcp/$(cl_ip "$1")/$2") 2>/dev/null && return 0
		sleep 0.1
	done
	die "$1 does not answer on port $2"
}

cl_up() {
	is_root || die "./dev cluster needs root (network namespaces)"
	for c in haproxy memcached; do
		command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || die "$c is missing"
	done
	[ -x "$DEV/node/node_modules/.bin/s3rver" ] || die "s3rver is missing (./dev installs it)"
	ip link show "$CL_BR" >/dev/null 2>&1 && cl_down
	rm -rf "$CL_DIR"
	say "network: $CL_BR, $CL_NET.0/24, hosts: $CL_HOSTS"
	cl_net_up
	cl_secrets
	for h in $CL_HOSTS; do cl_config "$h"; done
	for h in db1 db2 db3; do cl_pgbr_conf "$h"; done
	say "db1: PostgreSQL primary"
	cl_in db1 h_db1
	say "migrations"
	AGORA_CONFIG=$CL_DIR/db1/agora.conf "$PREFIX/sbin/agoractl" migrate >/dev/null ||
		die "migration failed"
	say "db2: streaming replica"
	cl_in db2 h_db2
	[ -z "${CL_SYNC:-}" ] || cl_sync on
	say "mc1, mc2: memcached; peers: S3 and the payment gateway"
	cl_in mc1 h_mc mc1
	cl_in mc2 h_mc mc2
	cl_in peers h_peers
	cl_wait_port mc1 11211
	cl_wait_port mc2 11211
	cl_wait_port peers "$CL_S3_PORT"
	cl_wait_port peers "$CL_GATEWAY_PORT"
	say "web1: Apache (managed); web2: lighttpd (pool)"
	cl_in web1 h_web apache managed
	cl_in web2 h_web lighttpd pool
	say "lb: HAProxy"
	cl_in lb h_lb
	cl_wait_port lb 80
	say "wk1, wk2: agora-worker"
	cl_in wk1 h_worker
	cl_in wk2 h_worker
	cl_wait_ready
	say "agora is up on several hosts; ./dev cluster down stops it"
	echo "http://$(cl_ip lb)/"
}

# Until HAProxy has both web hosts up.
cl_wait_ready() {
	local i
	for i in $(seq 1 100); do
		[ "$(cl_lb_states | grep -c ' UP$')" -eq 2 ] && return 0
		sleep 0.2
	done
	die "HAProxy does not see both web hosts up: $(cl_lb_states | tr '\n' ' ')"
}

# "web1 UP" lines from HAProxy's statistics.
cl_lb_states() {
	curl -fsS "http://$(cl_ip lb):8404/stats;csv" 2>/dev/null |
		awk -F, '$1 == "web" && $2 ~ /^web/ { print $2, $18 }'
}

# cl_sync on|off: whether db1 waits for db2 to have each commit.
cl_sync() {
	local names=
	[ "$1" = on ] && names=db2
	psql -qAt -h "$(cl_ip db1)" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "ALTER SYSTEM SET synchronous_standby_names = '$names'" \
		-c "SELECT pg_reload_conf()" >/dev/null
}

# The network namespaces' identities (inode numbers), for cl_leftovers.
cl_ns_ids() {
	local h
	for h in $CL_HOSTS; do
		stat -L -c %i "/run/netns/$(cl_ns "$h")" 2>/dev/null || true
	done
}

# What a cluster left behind after cl_down, given cl_ns_ids from before
# it: its bridge, a namespace, or a process in one (a namespace lives on,
# nameless, while a process holds it).  Each on stdout.
cl_leftovers() {
	local id p
	ip link show "$CL_BR" >/dev/null 2>&1 && echo "bridge $CL_BR"
	ip netns list 2>/dev/null | grep -o '^agora-[a-z0-9]*' | sed 's/^/namespace /'
	for p in /proc/[0-9]*; do
		id=$(stat -L -c %i "$p/ns/net" 2>/dev/null) || continue
		case " $* " in *" $id "*) echo "process ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline")" ;; esac
	done
}

cl_down() {
	cl_net_down
	local h run sock
	for h in $CL_HOSTS; do
		read -r run sock <<<"$(h_env "$h" && echo "$RUNDIR $PG_SOCK")"
		case $run in /tmp/agora-run-*) rm -rf "$run" ;; esac
		case $sock in /tmp/agora-pgsock-*) rm -rf "$sock" ;; esac
	done
}

cl_status() {
	local h n what
	if ! ip link show "$CL_BR" >/dev/null 2>&1; then
		echo "no cluster (./dev cluster up makes one)"
		return 1
	fi
	echo "URL: http://$(cl_ip lb)/"
	printf '%-6s %-12s %-34s %s\n' HOST ADDRESS ROLE PROCESSES
	for h in $CL_HOSTS; do
		case $h in
		lb) what="HAProxy" ;;
		web1) what="Apache, mod_fcgid" ;;
		web2) what="lighttpd, agora-fcgi-pool" ;;
		db1 | db2 | db3) what="PostgreSQL ($(cl_pg_role "$h"))" ;;
		mc*) what="memcached" ;;
		wk*) what="agora-worker" ;;
		peers) what="S3 server, payment gateway" ;;
		esac
		n=$(ip netns pids "$(cl_ns "$h")" 2>/dev/null | wc -l)
		printf '%-6s %-12s %-34s %s\n' "$h" "$(cl_ip "$h")" "$what" "$n"
	done
	echo "HAProxy: $(cl_lb_states | tr '\n' ' ')"
	echo "replication (db1): $(psql -qAt -h "$(cl_ip db1)" -U postgres -d postgres \
		-c "SELECT string_agg(application_name || ' ' || state || ' ' || sync_state, ', ') FROM pg_stat_replication" \
		2>/dev/null || echo "db1 down")"
}

cl_pg_role() {
	case $(psql -qAt -h "$(cl_ip "$1")" -U postgres -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null) in
	t) echo replica ;;
	f) echo primary ;;
	*) echo down ;;
	esac
}

# ./dev _cluster HOST ACTION, for the tests: kill (every process, KILL),
# destroy (that and its data), start (what the host runs, again), sync
# on|off (db1), stop (db2), backup (db1, db2: a full one), restore TIME
# (db3).
cl_ctl() {
	local h=$1
	case "$1 $2" in
	"db1 sync") cl_sync "$3" ;;
	*" kill")
		cl_kill "$h" KILL
		# What it would find at its next start is stale: a pid read
		# from there could be another process's by then.
		rm -f "$(h_env "$h" && echo "$RUNDIR")"/*.pid "$CL_DIR/$h/pg/postmaster.pid" ;;
	"web1 start") cl_in web1 h_web apache managed ;;
	"web2 start") cl_in web2 h_web lighttpd pool ;;
	"db1 start") cl_in db1 h_db1 ;;
	"db2 start") cl_in db2 h_db2 ;;
	"mc1 start" | "mc2 start") cl_in "$h" h_mc "$h"; cl_wait_port "$h" 11211 ;;
	"wk1 start" | "wk2 start") cl_in "$h" h_worker ;;
	"db2 stop")
		cl_in db2 h_pg_stop ;;
	"db1 backup" | "db2 backup") cl_in "$h" h_pgbackrest backup --type=full >/dev/null ;;
	"db3 restore") cl_in db3 h_restore "$3" ;;
	*" destroy")
		# A lost host: its processes and its data.
		cl_kill "$h" KILL
		rm -rf "$CL_DIR/$h/pg" ;;
	*) die "usage: _cluster HOST kill|start|destroy, db1 sync on|off, db2 stop, db1|db2 backup, db3 restore TIME" ;;
	esac
}

h_pg_stop() {
	as_pg "$(pgbin)/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "${1:-}" = _in ]; then
	set -euo pipefail
	TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	# shellcheck source=tests/stack.sh
	. "$TOP/tests/stack.sh"
	h_env "$2"
	fn=$3
	shift 3
	"$fn" "$@"
fi
