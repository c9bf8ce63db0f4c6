#!/usr/bin/env bash
# tests/lib/services.sh start|stop|env - the servers the test suite talks to,
# all on 127.0.0.1: redis-server (6379), PostgreSQL 15 (5432, role and
# database "tessera", password "tessera"), s3rver (4568, S3RVER/S3RVER),
# MariaDB (3316, its own data directory $MYDATA, user and database
# "tessera", password "tessera"; not the system's server), a 3-member etcd
# cluster (clients on 23791, 23793, 23795, peers on the next ports, data
# under $ETDATA; not the system's etcd).
# Idempotent: a server already answering is left alone.  `env` prints the
# variables the tests read (TESSERA_TEST_REDIS, TESSERA_TEST_PG,
# TESSERA_TEST_S3, TESSERA_TEST_MYSQL).
set -u
S3DIR=${TESSERA_S3RVER_DIR:-/opt/tessera-test}
S3DATA=${TESSERA_S3RVER_DATA:-/var/tmp/tessera-s3rver}
S3PORT=4568
MYDATA=${TESSERA_MARIADB_DATA:-/var/tmp/tessera-mariadb}
MYPORT=3316
ETDATA=${TESSERA_ETCD_DATA:-/var/tmp/tessera-etcd}
ETURL=etcd://127.0.0.1:23791,127.0.0.1:23793,127.0.0.1:23795/tessera

start_redis() {
	if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
		return 0
	fi
	redis-server --bind 127.0.0.1 --port 6379 --daemonize yes \
		--save '' --appendonly no --logfile /var/tmp/tessera-redis.log || return 1
	for _ in $(seq 50); do
		redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.1
	done
	echo "services: redis-server did not start" >&2
	return 1
}

start_pg() {
	if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
		if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
			pg_createcluster 15 main >/dev/null || return 1
		fi
		pg_ctlcluster 15 main start || return 1
		for _ in $(seq 100); do
			pg_isready -h 127.0.0.1 -p 5432 -q && break
			sleep 0.1
		done
	fi
	su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='tessera'\"" | grep -q 1 ||
		su postgres -c "psql -qc \"CREATE ROLE tessera LOGIN SUPERUSER PASSWORD 'tessera'\"" || return 1
	su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='tessera'\"" | grep -q 1 ||
		su postgres -c "createdb -O tessera tessera" || return 1
}

start_s3() {
	if curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" 2>/dev/null; then
		return 0
	fi
	if [ ! -x "$S3DIR/node_modules/.bin/s3rver" ]; then
		mkdir -p "$S3DIR"
		(cd "$S3DIR" && npm install --silent --no-audit --no-fund s3rver@3.7.1) >/dev/null 2>&1 ||
			{ echo "services: npm install s3rver failed" >&2; return 1; }
	fi
	mkdir -p "$S3DATA"
	# s3rver encrypts ListObjectsV2 continuation tokens with DES, which
	# Node 17+ (OpenSSL 3) only offers through the legacy provider: without
	# it every truncated listing answers 500 InternalError.
	NODE_OPTIONS=--openssl-legacy-provider nohup "$S3DIR/node_modules/.bin/s3rver" -d "$S3DATA" -a 127.0.0.1 -p "$S3PORT" \
		--silent >/var/tmp/tessera-s3rver.log 2>&1 &
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "services: s3rver did not start" >&2
	return 1
}

my_root() { mariadb --no-defaults -S "$MYDATA/sock" -u root "$@"; }

# MariaDB: a private instance (datadir, port, socket), so a system server,
# if any, is untouched.  max_allowed_packet holds a 16 MiB value (kv.h).
# Like redis here (no appendonly), it does not fsync each commit
# (innodb_flush_log_at_trx_commit=2): the suites test Tessera, not the
# server's durability, and 100k-create suites stay fast.
start_mysql() {
	if my_root -e 'SELECT 1' >/dev/null 2>&1; then
		return 0
	fi
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] ||
		{ echo "services: mariadbd not installed" >&2; return 1; }
	if [ ! -d "$MYDATA/mysql" ]; then
		mkdir -p "$MYDATA"
		mariadb-install-db --no-defaults --datadir="$MYDATA" --user=root \
			--auth-root-authentication-method=socket --skip-test-db \
			>"$MYDATA.install.log" 2>&1 ||
			{ echo "services: mariadb-install-db failed (see $MYDATA.install.log)" >&2; return 1; }
	fi
	/usr/sbin/mariadbd --no-defaults --user=root --datadir="$MYDATA" \
		--socket="$MYDATA/sock" --port=$MYPORT --bind-address=127.0.0.1 \
		--pid-file="$MYDATA/pid" --log-error="$MYDATA.err" \
		--max-allowed-packet=64M --innodb-buffer-pool-size=64M \
		--skip-log-bin --skip-name-resolve --max-connections=500 \
		--innodb-flush-log-at-trx-commit=2 \
		>/dev/null 2>&1 </dev/null &
	for _ in $(seq 150); do
		my_root -e 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.1
	done
	my_root -e "CREATE USER IF NOT EXISTS tessera@'%' IDENTIFIED BY 'tessera';
		GRANT ALL ON *.* TO tessera@'%';
		CREATE DATABASE IF NOT EXISTS tessera" ||
		{ echo "services: mariadb did not start (see $MYDATA.err)" >&2; return 1; }
}

# etcd: three members on 127.0.0.1 (member N: client port 2379(2N-1),
# peer port 2379(2N)), each with its own data directory and pid file.
# Limits above the defaults so the metadata suites' big values fit
# (--max-request-bytes 32 MiB; --max-txn-ops 20000).
start_etcd() {
	if curl -s -m 2 http://127.0.0.1:23791/health 2>/dev/null | grep -q true; then
		return 0
	fi
	command -v etcd >/dev/null 2>&1 ||
		{ echo "services: etcd not installed" >&2; return 1; }
	local cluster= n c p
	for n in 1 2 3; do
		p=$((23790 + 2 * n))
		cluster=$cluster${cluster:+,}e$n=http://127.0.0.1:$p
	done
	mkdir -p "$ETDATA"
	for n in 1 2 3; do
		c=$((23789 + 2 * n)) p=$((23790 + 2 * n))
		etcd --name e$n --data-dir "$ETDATA/e$n" \
			--listen-client-urls http://127.0.0.1:$c \
			--advertise-client-urls http://127.0.0.1:$c \
			--listen-peer-urls http://127.0.0.1:$p \
			--initial-advertise-peer-urls http://127.0.0.1:$p \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token tessera-test \
			--max-request-bytes 33554432 --max-txn-ops 20000 \
			--quota-backend-bytes 4294967296 \
			>"$ETDATA/e$n.log" 2>&1 </dev/null &
		echo $! >"$ETDATA/e$n.pid"
	done
	for _ in $(seq 150); do
		curl -s -m 1 http://127.0.0.1:23791/health 2>/dev/null | grep -q true && return 0
		sleep 0.1
	done
	echo "services: etcd did not start (see $ETDATA/e*.log)" >&2
	return 1
}

print_env() {
	echo "export TESSERA_TEST_REDIS=redis://127.0.0.1:6379"
	echo "export TESSERA_TEST_PG=postgres://tessera:tessera@127.0.0.1:5432/tessera"
	echo "export TESSERA_TEST_S3=http://127.0.0.1:$S3PORT"
	echo "export TESSERA_TEST_MYSQL=mysql://tessera:tessera@127.0.0.1:$MYPORT/tessera"
	echo "export TESSERA_TEST_ETCD=$ETURL"
	echo "export TESSERA_TEST_S3_KEY=S3RVER TESSERA_TEST_S3_SECRET=S3RVER"
}

case "${1:-start}" in
start)
	rc=0
	start_redis || rc=1
	start_pg || rc=1
	start_s3 || rc=1
	start_mysql || rc=1
	start_etcd || rc=1
	exit $rc
	;;
stop)
	redis-cli -h 127.0.0.1 -p 6379 shutdown nosave 2>/dev/null
	pg_ctlcluster 15 main stop 2>/dev/null
	pkill -f 'node_modules/.bin/s3rver' 2>/dev/null
	[ -f "$MYDATA/pid" ] && kill "$(cat "$MYDATA/pid")" 2>/dev/null
	for f in "$ETDATA"/e*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	exit 0
	;;
env) print_env ;;
*) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
