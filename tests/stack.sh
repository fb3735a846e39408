#!/usr/bin/env bash
# stack.sh: the services agora's integration tests run against, each
# stack in a state directory of its own with its own PostgreSQL cluster,
# memcached and web server (Apache or lighttpd, its programs managed by
# it or in a pool) on loopback ports, serving an installed agora.
#
# dev sources it: dev builds and installs, then starts and stops stacks
# with these functions (DEV: where the state directories are; PREFIX and
# CGIDIR: the installed tree).  make installcheck runs it:
#
#   stack.sh run PREFIX DIR -- COMMAND...
#       start a stack (lighttpd, pool) in DIR for the agora installed in
#       PREFIX, run COMMAND with the tests' environment, stop the stack;
#       COMMAND's status, or 0 with a note when a service is missing
#   stack.sh _svc installcheck pg|mc start|stop, or web restart
#       the tests' service control, for a stack that run started

say() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

pgbin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] || die "PostgreSQL server binaries not found"
	echo "$d"
}

# Run a command as the PostgreSQL user: initdb refuses root.
as_pg() {
	if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# $STATE/$1, the directory of sockets up to 107 - $2 bytes long: a
# socket's path holds 107 bytes at most, so a deep state directory (make
# distcheck's, in a clone under /root) puts them in /tmp/agora-$1-HASH
# instead, named for the state directory.
socket_dir() {
	if [ $((${#STATE} + 1 + ${#1})) -gt "$2" ]; then
		echo "/tmp/agora-$1-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
	else
		echo "$STATE/$1"
	fi
}

# Each stack has its ports: up uses AGORA_HTTP_PORT (8080) and friends,
# check its own, so both can run at once.  $1: the stack's name, and its
# state directory under $DEV.
stack_env() {
	STATE=$DEV/$1
	if [ "$1" = up ]; then
		HTTP_PORT=${AGORA_HTTP_PORT:-8080}
		TLS_PORT=${AGORA_TLS_PORT:-8443}
		PG_PORT=${AGORA_DEV_PG_PORT:-54329}
		MC_PORT=${AGORA_DEV_MC_PORT:-11219}
		PEER_PORT=${AGORA_DEV_PEER_PORT:-17000}
	else
		HTTP_PORT=${AGORA_CHECK_HTTP_PORT:-18080}
		TLS_PORT=${AGORA_CHECK_TLS_PORT:-18443}
		PG_PORT=${AGORA_CHECK_PG_PORT:-54339}
		MC_PORT=${AGORA_CHECK_MC_PORT:-11229}
		PEER_PORT=${AGORA_CHECK_PEER_PORT:-18000}
	fi
	# The upgrade test's stack: the check stack's ports plus 100; make
	# installcheck's plus 300 (dev's install guide takes HTTP plus 200).
	local off=0
	case $1 in upgrade) off=100 ;; installcheck) off=300 ;; esac
	HTTP_PORT=$((HTTP_PORT + off))
	TLS_PORT=$((TLS_PORT + off))
	PG_PORT=$((PG_PORT + off))
	MC_PORT=$((MC_PORT + off))
	PEER_PORT=$((PEER_PORT + off))
	# The programs' sockets are there ("lighttpd-notifications.sock", 27
	# bytes, the longest).
	RUNDIR=$(socket_dir run 72)
	# A unix socket, as on a single-host install; the directory is
	# readable by the web server's user.
	PG_SOCK=$(socket_dir pgsock 80)
	APP_URL="host=$PG_SOCK port=$PG_PORT dbname=agora user=agora_app connect_timeout=2 application_name=agora"
	ADMIN_URL="host=$PG_SOCK port=$PG_PORT dbname=agora user=agora connect_timeout=2"
	export AGORA_CONFIG=$STATE/agora.conf
}

web_user() { if is_root; then echo www-data; else id -un; fi; }

pg_start() {
	local bin
	bin=$(pgbin)
	mkdir -p "$STATE"
	chmod 755 "$STATE"
	if [ ! -f "$STATE/pg/PG_VERSION" ]; then
		say "initdb"
		mkdir -p "$STATE/pg"
		if is_root; then chown postgres "$STATE/pg"; fi
		as_pg "$bin/initdb" -D "$STATE/pg" -U postgres --auth=trust \
			-E UTF8 --locale=C.UTF-8 >/dev/null
		# A cluster's database host (tests/cluster.sh) lets its peers in.
		[ -z "${PG_HBA_EXTRA:-}" ] || printf '%s\n' "$PG_HBA_EXTRA" >> "$STATE/pg/pg_hba.conf"
	fi
	mkdir -p "$PG_SOCK"
	chmod 755 "$PG_SOCK"
	if is_root; then chown postgres "$PG_SOCK"; fi
	if ! as_pg "$bin/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1; then
		as_pg "$bin/pg_ctl" -D "$STATE/pg" -w -t 30 -l "$STATE/pg/server.log" \
			-o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=${PG_LISTEN:-127.0.0.1} -c fsync=off -c max_connections=300 ${PG_OPTS:-}" \
			start >/dev/null || die "PostgreSQL did not start (see $STATE/pg/server.log)"
	fi
	psql -qAt -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<-'SQL' >/dev/null
		SELECT 'CREATE ROLE agora LOGIN'
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agora') \gexec
		ALTER ROLE agora NOCREATEROLE;
		SELECT 'CREATE ROLE agora_app LOGIN'
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agora_app') \gexec
		SELECT 'CREATE DATABASE agora OWNER agora'
		 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'agora') \gexec
	SQL
}

pg_stop() {
	[ -f "$STATE/pg/PG_VERSION" ] || return 0
	as_pg "$(pgbin)/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1 || true
	case $PG_SOCK in /tmp/agora-pgsock-*) rmdir "$PG_SOCK" 2>/dev/null || true ;; esac
}

# A crash and restart at once, as a failover or an OOM kill: every session
# ends without a goodbye, and pg_ctl waits until connections are taken.
pg_restart() {
	as_pg "$(pgbin)/pg_ctl" -D "$STATE/pg" -m immediate -w -t 30 \
		-l "$STATE/pg/server.log" restart >/dev/null ||
		die "PostgreSQL did not restart (see $STATE/pg/server.log)"
}

# The read replica of tests/http_replica.py: a streaming standby of the
# stack's PostgreSQL on the next port, made afresh each time with
# pg_basebackup (the primary's pg_hba.conf, from initdb --auth=trust,
# lets replication in).
replica_start() {
	local bin dir=$STATE/pg-replica
	bin=$(pgbin)
	replica_stop
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 700 "$dir"
	if is_root; then chown postgres "$dir"; fi
	as_pg "$bin/pg_basebackup" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -D "$dir" \
		-R -X stream -c fast >/dev/null || die "pg_basebackup failed"
	rm -f "$dir/server.log"
	# The unix socket alone (its name has the port): the port is in the
	# kernel's ephemeral range, where a long-lived client connection (a
	# program's to memcached) may hold it for the whole run, and the
	# tests reach the replica through the socket.
	as_pg "$bin/pg_ctl" -D "$dir" -w -t 30 -l "$dir/server.log" \
		-o "-p $((PG_PORT + 1)) -k $PG_SOCK -c listen_addresses='' -c fsync=off -c max_connections=300" \
		start >/dev/null || die "the replica did not start (see $dir/server.log)"
}

replica_stop() {
	[ -f "$STATE/pg-replica/PG_VERSION" ] || return 0
	as_pg "$(pgbin)/pg_ctl" -D "$STATE/pg-replica" -m fast -w stop >/dev/null 2>&1 || true
}

mc_start() {
	local u=()
	mkdir -p "$RUNDIR"
	mc_running && return 0
	if is_root; then u=(-u memcache); fi
	memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -c 4096 "${u[@]}" \
		>"$STATE/memcached.log" 2>&1 &
	echo $! > "$RUNDIR/memcached.pid"
	wait_port "$MC_PORT" || die "memcached did not start"
}

mc_running() {
	[ -f "$RUNDIR/memcached.pid" ] && kill -0 "$(cat "$RUNDIR/memcached.pid")" 2>/dev/null
}

mc_stop() {
	if mc_running; then
		kill "$(cat "$RUNDIR/memcached.pid")"
		while mc_running; do sleep 0.05; done
	fi
	rm -f "$RUNDIR/memcached.pid"
}

wait_port() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Wait until nothing listens on port $1 any more (Apache's children can
# outlive its stop by seconds); a restart would fail to bind otherwise.
wait_port_free() {
	local i
	for i in $(seq 1 150); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# A file only its owner may read, or (with "web") also the web server's
# group, when dev runs as root: as README's install section makes them.
file_mode() {
	if is_root && [ "${2:-}" = web ]; then
		chown "root:$(web_user)" "$1" && chmod 0640 "$1"
	else
		chmod 0600 "$1"
	fi
}

# A secret file made under umask 077 with content $2 (once), then shared.
secret_file() {
	[ -s "$1" ] || (umask 077 && printf '%s\n' "$2" > "$1")
	file_mode "$1" "${3:-}"
}

# The configuration as an admin would write it: no secret in agora.conf
# (0640, the web server's group may read it); each secret in a file of its
# own (*_file), the owner's database URL readable by root alone.
write_config() {
	mkdir -p "$STATE/storage" "$RUNDIR"
	if is_root; then chown "$(web_user)" "$STATE/storage" "$RUNDIR"; fi
	secret_file "$STATE/webhook.secret" "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" web
	secret_file "$STATE/jwt.secret" "$(head -c 48 /dev/urandom | base64)" web
	# s3rver's fixed keys, in files as real keys would be.
	secret_file "$STATE/s3.access" S3RVER web
	secret_file "$STATE/s3.secret" S3RVER web
	rm -f "$STATE/admin.url"
	secret_file "$STATE/admin.url" "$ADMIN_URL"
	(umask 027 && cat > "$STATE/agora.conf") <<-EOF
		# Written by tests/stack.sh for the stack in this directory.
		database_url = $APP_URL
		database_admin_url_file = $STATE/admin.url
		memcached_servers = 127.0.0.1:$MC_PORT
		storage = local
		storage_dir = $STATE/storage
		run_dir = $RUNDIR
		db_retry_after = 1
		jwt_secret_file = $STATE/jwt.secret
		webhook_secret_file = $STATE/webhook.secret
		public_url = $(base_url)
		# The test peers, when the tests start them: an S3-compatible
		# server and an SMTP server.
		s3_endpoint = http://127.0.0.1:$((PEER_PORT + 90))
		s3_bucket = agora
		s3_access_key_file = $STATE/s3.access
		s3_secret_key_file = $STATE/s3.secret
		smtp_url = smtp://127.0.0.1:$((PEER_PORT + 25))/agora.test
		smtp_from = shop@agora.test
	EOF
	case $(basename "$STATE") in check | installcheck)
		# The tests run many requests from one address, and race
		# hundreds of orders of one user; they check the limits
		# themselves with low values of their own.
		printf '%s\n' 'rate_limit_auth = 100000' 'rate_limit_api = 1000000' \
			'order_unpaid_max = 100000' 'order_reserved_units_max = 100000000' \
			'order_reserved_units_per_ip = 100000000' \
			>> "$STATE/agora.conf"
		;;
	esac
	signin_config
	file_mode "$STATE/agora.conf" web
}

# The sign-in providers, last (a section runs to the end of the file):
# the tests' provider (tests/oidcprovider.py) on PEER_PORT + 70, as an
# OpenID Connect one and as one of the GitHub kind.
signin_config() {
	local base=http://127.0.0.1:$((PEER_PORT + 70))
	secret_file "$STATE/signin.secret" "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" web
	cat >> "$STATE/agora.conf" <<-EOF
		[provider testid]
		display_name = Test ID
		issuer = $base/oidc
		client_id = agora-test
		client_secret_file = $STATE/signin.secret
		[provider testhub]
		display_name = TestHub
		type = oauth2
		client_id = agora-test
		client_secret_file = $STATE/signin.secret
		authorization_endpoint = $base/hub/login/oauth/authorize
		token_endpoint = $base/hub/login/oauth/access_token
		userinfo_endpoint = $base/hub/user
		emails_endpoint = $base/hub/user/emails
	EOF
}

migrate() {
	"$PREFIX/sbin/agoractl" migrate >/dev/null || die "migration failed"
}

# The AGORA_* variables of this environment, for web servers that do not
# pass their own environment to the programs.
agora_vars() { env | grep -E '^AGORA_[A-Z_]+=' || true; }

# The installed configuration, with this stack's run directory for the
# sockets, so that the up and check stacks do not share them.
stack_snippet() {
	local name=agora-$1 out
	[ "$2" = pool ] && name=$name-pool
	out=$STATE/$name.conf
	sed "s|$PREFIX/var/run/agora|$RUNDIR|g" \
		"$PREFIX/share/agora/httpd-conf/$name.conf" > "$out"
	echo "$out"
}

# With TLS=yes the stack serves HTTPS on TLS_PORT with the installed
# agora-*-tls.conf, and HTTP_PORT redirects there.
TLS=no

# The URL the stack serves agora at.
base_url() {
	if [ "$TLS" = yes ]; then
		echo "https://127.0.0.1:$TLS_PORT"
	else
		echo "http://127.0.0.1:$HTTP_PORT"
	fi
}

# A certificate for 127.0.0.1 and localhost, signed by a throwaway CA
# (tls/ca.pem, which clients are told to trust), both ECDSA P-256, made
# once per stack and again a day before they end.  tls/ocsp.der is the
# CA's OCSP answer for the certificate ("good"), for servers that staple
# an answer from a file.
tls_files() {
	local d=$STATE/tls serial
	if [ -s "$d/fullchain.pem" ] && [ -s "$d/ocsp.der" ] && openssl x509 -checkend 86400 -noout -in "$d/server.pem" \
		>/dev/null 2>&1; then
		return 0
	fi
	say "making a certificate for 127.0.0.1 (throwaway CA in $d)"
	rm -rf "$d"
	mkdir -p "$d"
	(
		cd "$d"
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout ca.key -out ca.pem -days 30 -subj "/CN=agora dev CA" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout server.key -out server.csr -subj "/CN=127.0.0.1"
		printf '%s\n' 'subjectAltName = IP:127.0.0.1, DNS:localhost' \
			'basicConstraints = critical, CA:FALSE' \
			'keyUsage = critical, digitalSignature' \
			'extendedKeyUsage = serverAuth' > server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 \
			-days 29 -extfile server.ext -out server.pem
		# What a CA hands out (certbot's fullchain.pem): the certificate,
		# then its issuer, which Apache needs to staple.
		cat server.pem ca.pem > fullchain.pem
		# The OCSP answer, made offline from an index as openssl ca keeps it.
		serial=$(openssl x509 -noout -serial -in server.pem | cut -d= -f2)
		printf 'V\t%s\t\t%s\tunknown\t%s\n' \
			"$(date -u -d '+29 days' +%y%m%d%H%M%SZ)" "$serial" \
			"$(openssl x509 -noout -subject -nameopt compat -in server.pem | sed 's/^subject=//')" \
			> index.txt
		openssl ocsp -issuer ca.pem -cert server.pem -no_nonce -reqout ocsp.req
		openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem \
			-reqin ocsp.req -ndays 28 -respout ocsp.der
	) >/dev/null 2>&1 || die "could not make the certificate (openssl in $d)"
	chmod 644 "$d/ca.pem" "$d/server.pem" "$d/fullchain.pem" "$d/ocsp.der"
	# The web servers read the key as root; lighttpd reads the OCSP
	# answer again later, as the web server's user.
	file_mode "$d/server.key" web
}

# The CA's OCSP responder, for Apache to fetch the answer it staples: it
# hands out tls/ocsp.der on 127.0.0.1:$TLS_PORT+1.
ocsp_start() {
	python3 -c '
import http.server, sys
der = open(sys.argv[2], "rb").read()
class Answer(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(der)))
        self.end_headers()
        self.wfile.write(der)
    do_GET = do_POST
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
' "$((TLS_PORT + 1))" "$STATE/tls/ocsp.der" </dev/null >/dev/null 2>&1 &
	echo $! > "$RUNDIR/ocsp.pid"
	wait_port "$((TLS_PORT + 1))" || die "the OCSP responder did not start"
}

# The installed agora-SERVER-tls.conf with this stack's run directory.
tls_snippet() {
	local out=$STATE/agora-$1-tls.conf
	sed "s|$PREFIX/var/run/agora|$RUNDIR|g" \
		"$PREFIX/share/agora/httpd-conf/agora-$1-tls.conf" > "$out"
	echo "$out"
}

apache_start() {
	local mode=$1 conf=$STATE/apache.conf mods=/usr/lib/apache2/modules snippet m
	local site=$STATE/agora-site.conf
	mkdir -p "$STATE/fcgid" "$STATE/logs"
	if is_root; then chown "$(web_user)" "$STATE/fcgid"; fi
	snippet=$(stack_snippet apache "$mode")
	# What goes inside agora's VirtualHost.
	{
		agora_vars | sed 's/^\([^=]*\)=\(.*\)$/FcgidInitialEnv \1 "\2"/'
		echo "Include $snippet"
		[ -n "${BENCH_INCLUDE:-}" ] && echo "Include $BENCH_INCLUDE"
		if [ -n "${WEB_INCLUDE:-}" ]; then echo "Include $WEB_INCLUDE"; fi
	} > "$site"
	{
		echo "ServerRoot /etc/apache2"
		echo "ServerName 127.0.0.1"
		echo "Listen ${BIND:-127.0.0.1}:$HTTP_PORT"
		echo "PidFile $RUNDIR/apache.pid"
		echo "ErrorLog $STATE/logs/apache-error.log"
		echo "LogLevel warn"
		for m in mpm_event authz_core authz_host mime dir alias fcgid proxy proxy_fcgi headers remoteip; do
			echo "LoadModule ${m}_module $mods/mod_$m.so"
		done
		if [ "$TLS" = yes ]; then
			for m in ssl socache_shmcb rewrite; do
				echo "LoadModule ${m}_module $mods/mod_$m.so"
			done
			echo "Listen 127.0.0.1:$TLS_PORT https"
		fi
		# What an admin enables with a2enconf: outside the VirtualHost.
		echo "Include $PREFIX/share/agora/httpd-conf/agora-apache-server.conf"
		if is_root; then echo "User www-data"; echo "Group www-data"; fi
		echo "TypesConfig /etc/mime.types"
		echo "Mutex pthread fcgid-proctbl"
		echo "Mutex pthread fcgid-pipe"
		echo "FcgidIPCDir $STATE/fcgid"
		echo "FcgidProcessTableFile $STATE/fcgid/table"
		# The event MPM sized for the load test's 1,000 connections, as
		# an admin enables it with a2enconf (README, "The web server").
		echo "Include $PREFIX/share/agora/httpd-conf/agora-apache-mpm.conf"
		echo "MaxKeepAliveRequests 0"
		if [ "$TLS" = yes ]; then
			# As README's HTTPS section has an admin include it.
			echo "Define AGORA_HTTP_PORT $HTTP_PORT"
			echo "Define AGORA_HTTPS_PORT $TLS_PORT"
			echo "Define AGORA_TLS_CERT $STATE/tls/fullchain.pem"
			echo "Define AGORA_TLS_KEY $STATE/tls/server.key"
			echo "Define AGORA_APACHE_CONF $site"
			# The certificate names no responder: this one.
			echo "SSLStaplingForceURL http://127.0.0.1:$((TLS_PORT + 1))/"
			echo "Include $(tls_snippet apache)"
		else
			echo "<VirtualHost ${BIND:-127.0.0.1}:$HTTP_PORT>"
			echo "Include $site"
			echo "</VirtualHost>"
		fi
	} > "$conf"
	[ "$TLS" = yes ] && ocsp_start
	/usr/sbin/apache2 -f "$conf" -k start || die "Apache did not start (see $STATE/logs)"
	echo apache > "$RUNDIR/web"
}

lighttpd_start() {
	local mode=$1 conf=$STATE/lighttpd.conf snippet
	mkdir -p "$STATE/logs"
	if is_root; then chown "$(web_user)" "$STATE/logs"; fi
	snippet=$(stack_snippet lighttpd "$mode")
	cat > "$conf" <<-EOF
		server.bind = "${BIND:-127.0.0.1}"
		server.port = $HTTP_PORT
		server.pid-file = "$RUNDIR/lighttpd.pid"
		server.errorlog = "$STATE/logs/lighttpd-error.log"
		server.breakagelog = "$STATE/logs/lighttpd-programs.log"
		server.max-connections = 2048
		mimetype.assign = ( ".html" => "text/html; charset=utf-8",
			".txt" => "text/plain; charset=utf-8", ".css" => "text/css",
			".js" => "text/javascript", ".json" => "application/json",
			".svg" => "image/svg+xml", ".png" => "image/png" )
		include "$snippet"
	EOF
	[ -n "${BENCH_INCLUDE:-}" ] && echo "include \"$BENCH_INCLUDE\"" >> "$conf"
	if [ -n "${WEB_INCLUDE:-}" ]; then echo "include \"$WEB_INCLUDE\"" >> "$conf"; fi
	if [ "$TLS" = yes ]; then
		# As README's HTTPS section has an admin include it, and the
		# OCSP answer the stack made, stapled.
		cat >> "$conf" <<-EOF
			var.agora_https_port = $TLS_PORT
			var.agora_tls_cert = "$STATE/tls/fullchain.pem"
			var.agora_tls_key = "$STATE/tls/server.key"
			include "$(tls_snippet lighttpd)"
			\$SERVER["socket"] == ":$TLS_PORT" {
				ssl.stapling-file = "$STATE/tls/ocsp.der"
			}
		EOF
	fi
	if is_root; then printf 'server.username = "www-data"\nserver.groupname = "www-data"\n' >> "$conf"; fi
	/usr/sbin/lighttpd -f "$conf" || die "lighttpd did not start (see $STATE/logs)"
	echo lighttpd > "$RUNDIR/web"
}

pool_start() {
	local u=()
	mkdir -p "$STATE/logs"
	if is_root; then u=(-u www-data); fi
	"$PREFIX/sbin/agora-fcgi-pool" start ${AGORA_POOL_PROCS:+-n "$AGORA_POOL_PROCS"} \
		-d "$RUNDIR" -l "$STATE/logs" "${u[@]}" >/dev/null || die "the FastCGI pool did not start"
}

# web_start SERVER MODE [tls]: the web server (and the pool), serving
# HTTPS on TLS_PORT with tls.
web_start() {
	local server=$1 mode=$2
	TLS=no
	[ "${3:-}" = tls ] && TLS=yes
	[ "$TLS" = yes ] && tls_files
	[ "$mode" = pool ] && pool_start
	"${server}_start" "$mode"
	# What runs, so that _svc can restart it as it was.
	echo "$server $mode ${3:-}" > "$RUNDIR/web"
	wait_port "$HTTP_PORT" || die "$server is not listening on $HTTP_PORT"
	if [ "$TLS" = yes ]; then
		wait_port "$TLS_PORT" || die "$server is not listening on $TLS_PORT"
	fi
	wait_health
}

# The first request may start processes; give it a few seconds.
wait_health() {
	local i
	for i in $(seq 1 50); do
		if [ "$TLS" = yes ]; then
			curl -fsS -o /dev/null --cacert "$STATE/tls/ca.pem" "$(base_url)/api/v1/health" &&
				return 0
		else
			curl -fsS -o /dev/null "$(base_url)/api/v1/health" && return 0
		fi
		sleep 0.2
	done
	die "the stack does not answer /api/v1/health (see $STATE/logs)"
}

# TERM a process and wait up to 10 s for it to go.
pid_stop() {
	local i
	kill "$1" 2>/dev/null || return 0
	for i in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
}

pidfile_stop() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	# The server may remove its pid file between the test and the read.
	pid=$(cat "$f" 2>/dev/null) || return 0
	pid_stop "$pid"
	rm -f "$f"
}

# TERM each process left in session sid that is Apache or one of our
# programs (a stale pid file may name another session), and wait for it.
session_stop() {
	local pid args
	# ps exits 1 when the session is empty: not a failure here.
	{ ps -o pid=,args= -s "$1" 2>/dev/null || true; } | while read -r pid args; do
		case $args in
		"$CGIDIR"/* | /usr/sbin/apache2\ *) pid_stop "$pid" ;;
		esac
	done
}

web_stop() {
	local server sid
	[ -f "$RUNDIR/web" ] || return 0
	read -r server _ < "$RUNDIR/web" || true
	if [ "$server" = apache ]; then
		# Apache leads a session of its own (it calls setsid), and
		# mod_fcgid's programs stay in it: any left after Apache are
		# stopped by that session, the recorded pid's.
		sid=$(cat "$RUNDIR/apache.pid" 2>/dev/null) || sid=
		/usr/sbin/apache2 -f "$STATE/apache.conf" -k stop 2>/dev/null || true
		pidfile_stop "$RUNDIR/apache.pid"
		[ -z "$sid" ] || session_stop "$sid"
	else
		pidfile_stop "$RUNDIR/lighttpd.pid"
	fi
	"$PREFIX/sbin/agora-fcgi-pool" stop -d "$RUNDIR" 2>/dev/null || true
	pidfile_stop "$RUNDIR/ocsp.pid"
	wait_port_free "$HTTP_PORT" || true
	wait_port_free "$TLS_PORT" || true
	rm -f "$RUNDIR/web"
}

# agora-worker as cron runs it in production: --loop runs of 55 seconds,
# one after another, logging to logs/worker.log; one worker for payments
# and one for invoices and notifications, as in the cron file.
worker_loop() {
	local as=()
	# As the cron file runs it: as the web server's user, who must be able
	# to read the files the worker stores.
	if is_root; then as=(setpriv --reuid=www-data --regid=www-data --init-groups); fi
	(
		trap 'kill "$child" 2>/dev/null; wait "$child"; exit 0' TERM
		while :; do
			"${as[@]}" "$PREFIX/sbin/agora-worker" --loop --deadline 55 --topics "$1" \
				2>>"$STATE/logs/worker.log" &
			child=$!
			wait "$child" || sleep 1
		done
	) </dev/null >/dev/null 2>&1 &
	echo $! >> "$RUNDIR/worker.pid"
}

worker_start() {
	worker_stop
	mkdir -p "$STATE/logs"
	worker_loop payment.charge,payment.refund
	worker_loop invoice.create,order.created,notify.order,notify.send,account.forgot,account.mail
}

worker_stop() {
	local pid
	# worker.pid holds one loop per line; each loop TERMs its worker,
	# which finishes its row and exits, before the loop ends.
	for pid in $(cat "$RUNDIR/worker.pid" 2>/dev/null); do
		pid_stop "$pid"
	done
	rm -f "$RUNDIR/worker.pid"
}

stack_up() {
	local server=$1 mode=$2 tls=${3:-}
	pg_start
	mc_start
	[ "$tls" = tls ] && TLS=yes
	write_config
	migrate
	web_stop
	web_start "$server" "$mode" "$tls"
}

stack_down() {
	[ -d "$STATE" ] || return 0
	worker_stop
	web_stop
	mc_stop
	replica_stop
	pg_stop
	case $RUNDIR in /tmp/agora-run-*) rm -rf "$RUNDIR" ;; esac
}

# Service control for the tests: _svc STACK pg|mc start|stop, _svc STACK pg
# restart (immediate), _svc STACK replica start|stop, and _svc
# STACK web restart, which starts the web server (and its programs, which
# read agora.conf when they start) again as it ran.
stack_svc() {
	local server mode tls v
	stack_env "$1"
	case "$2 $3" in
	"pg stop") pg_stop ;;
	"pg start") pg_start ;;
	"pg restart") pg_restart ;;
	"replica start") replica_start ;;
	"replica stop") replica_stop ;;
	"mc stop") mc_stop ;;
	"mc start") mc_start ;;
	"web restart")
		read -r server mode tls < "$RUNDIR/web" || die "no web server runs in $STATE"
		# The programs get the environment the stack started with, not
		# the test's own variables.
		for v in $(compgen -v AGORA_TEST_) AGORA_BUILDDIR AGORA_SRCDIR; do
			unset "$v"
		done
		web_stop
		web_start "$server" "$mode" "$tls" ;;
	*) die "usage: _svc STACK pg|mc|replica start|stop, pg restart, or web restart" ;;
	esac
}

# The environment the integration tests read (tests/agoratest.py) into
# the array TEST_ENV, for the stack of stack_env served by $1 in mode $2,
# over HTTPS when $3 is tls (trusting the stack's CA; the plain port,
# which redirects, is AGORA_TEST_PLAIN_URL); $4 runs _svc (dev, or this
# script).
stack_test_env() {
	local url=http://127.0.0.1:$HTTP_PORT
	[ "${3:-}" = tls ] && url=https://127.0.0.1:$TLS_PORT
	TEST_ENV=(AGORA_TEST_URL="$url" AGORA_TEST_PLAIN_URL="http://127.0.0.1:$HTTP_PORT"
		AGORA_TEST_CA="${3:+$STATE/tls/ca.pem}"
		AGORA_TEST_SERVER="$1" AGORA_TEST_MODE="$2"
		AGORA_TEST_STACK="$(basename "$STATE")" AGORA_TEST_DEV="$4"
		AGORA_TEST_CGIDIR="$CGIDIR" AGORA_TEST_PREFIX="$PREFIX"
		AGORA_TEST_APP_URL="$APP_URL" AGORA_TEST_ADMIN_URL="$ADMIN_URL"
		AGORA_TEST_REPLICA_PORT=$((PG_PORT + 1)))
}

# What a stack needs that a host may lack; each missing one on stdout.
stack_missing() {
	local c
	ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql
	for c in memcached lighttpd psql curl spawn-fcgi cgi-fcgi openssl; do
		command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || echo "$c"
	done
	"${PYTHON3:-python3}" -c 'import jwt, jsonschema' 2>/dev/null ||
		echo "python3-jwt or python3-jsonschema"
}

# run PREFIX DIR -- COMMAND...
stack_run() {
	local missing rc=0
	[ $# -ge 4 ] && [ "$3" = -- ] || die "usage: stack.sh run PREFIX DIR -- COMMAND..."
	missing=$(stack_missing | tr '\n' ' ')
	if [ -n "$missing" ]; then
		echo "stack.sh: no integration tests: missing ${missing% } (./dev check installs them)"
		return 0
	fi
	PREFIX=$1 CGIDIR=$1/libexec/agora/cgi-bin
	mkdir -p "$2"
	DEV=$(cd "$2" && pwd)
	shift 3
	export AGORA_STACK_PREFIX=$PREFIX AGORA_STACK_DIR=$DEV
	stack_env installcheck
	trap 'stack_down' EXIT
	stack_up lighttpd pool
	stack_test_env lighttpd pool "" "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stack.sh"
	env "${TEST_ENV[@]}" "$@" || rc=$?
	return "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	run) shift; stack_run "$@" ;;
	_svc)
		shift
		PREFIX=${AGORA_STACK_PREFIX:?not started by stack.sh run}
		CGIDIR=$PREFIX/libexec/agora/cgi-bin
		DEV=${AGORA_STACK_DIR:?not started by stack.sh run}
		stack_svc "$@" ;;
	*) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
fi
