#!/usr/bin/env bash
# Starts, stops and reports the local PostgreSQL 15 and RabbitMQ 3.10 that infmllm uses, on loopback only.
# No systemd or Docker needed. Every action is idempotent: `start` on running services and `stop` on stopped
# ones succeed and change nothing.
#
#   ops/services.sh start|stop|restart|status [postgres|rabbitmq]
#
# Settings (environment, with defaults): INFMLLM_PG_VERSION=15, INFMLLM_PG_CLUSTER=main, INFMLLM_PG_PORT=5432,
# INFMLLM_DB_USER=infmllm, INFMLLM_DB_PASSWORD=infmllm, INFMLLM_DB_NAME=infmllm.
set -euo pipefail

pg_version=${INFMLLM_PG_VERSION:-15}
pg_cluster=${INFMLLM_PG_CLUSTER:-main}
pg_port=${INFMLLM_PG_PORT:-5432}
db_user=${INFMLLM_DB_USER:-infmllm}
db_password=${INFMLLM_DB_PASSWORD:-infmllm}
db_name=${INFMLLM_DB_NAME:-infmllm}

# RabbitMQ and its Erlang distribution ports bind to loopback only.
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
rmq_pidfile=/var/lib/rabbitmq/mnesia/rabbit@$(hostname -s).pid

log() { echo "services: $*"; }

# Erlang's CLI tools start epmd (the port mapper daemon) when it is not running, and the daemon keeps whatever
# output descriptors it inherited: then a caller reading this script's output through a pipe never sees EOF.
# Every RabbitMQ tool here therefore runs with its output in a log file, never on ours.
rmq_log=/var/log/rabbitmq/infmllm-services.log
mkdir -p /var/log/rabbitmq
rmq_up() { rabbitmq-diagnostics -q ping </dev/null >>"$rmq_log" 2>&1; }
pg_up() { pg_ctlcluster "$pg_version" "$pg_cluster" status >/dev/null 2>&1; }

pg_start() {
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$pg_version $pg_cluster"; then
        log "creating PostgreSQL cluster $pg_version/$pg_cluster"
        pg_createcluster "$pg_version" "$pg_cluster" --port "$pg_port" >/dev/null
    fi
    local conf_dir=/etc/postgresql/$pg_version/$pg_cluster/conf.d
    mkdir -p "$conf_dir"
    # TLS with a CA made here for the loopback name and address, so clients can use sslmode=verify-full with
    # sslrootcert=$pg_tls/ca.pem (readable by all; the keys only by postgres).
    local pg_tls=/etc/postgresql/$pg_version/$pg_cluster/infmllm-tls
    if [[ ! -f $pg_tls/server.pem ]]; then
        mkdir -p "$pg_tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=infmllm local CA" \
            -keyout "$pg_tls/ca.key" -out "$pg_tls/ca.pem" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$pg_tls/server.key" \
            -out "$pg_tls/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$pg_tls/san.ext"
        openssl x509 -req -in "$pg_tls/server.csr" -CA "$pg_tls/ca.pem" -CAkey "$pg_tls/ca.key" -CAcreateserial \
            -days 3650 -extfile "$pg_tls/san.ext" -out "$pg_tls/server.pem" >/dev/null 2>&1
        chown -R postgres:postgres "$pg_tls"
        chmod 600 "$pg_tls"/*.key
        chmod 644 "$pg_tls"/*.pem
        chmod 755 "$pg_tls"
    fi
    printf "# written by infmllm ops/services.sh: loopback only, TLS offered\nlisten_addresses = '127.0.0.1'\nport = %s\nssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" \
        "$pg_port" "$pg_tls/server.pem" "$pg_tls/server.key" >"$conf_dir/infmllm.conf"
    if pg_up; then
        pg_ctlcluster "$pg_version" "$pg_cluster" reload </dev/null >/dev/null
        log "PostgreSQL $pg_version/$pg_cluster already running (settings reloaded)"
    else
        pg_ctlcluster "$pg_version" "$pg_cluster" start </dev/null >/dev/null
        log "PostgreSQL $pg_version/$pg_cluster started on 127.0.0.1:$pg_port"
    fi
    pg_isready -q -h 127.0.0.1 -p "$pg_port" -t 30
    # The role may create databases: integration tests migrate a fresh database of their own each run. Its name,
    # password and database reach psql through the environment (\getenv), never a command line (any character, and
    # nothing in `ps`); a changed INFMLLM_DB_PASSWORD changes the role's.
    INFMLLM_USER="$db_user" INFMLLM_PASSWORD="$db_password" INFMLLM_DB="$db_name" \
        su postgres -c "psql -q -p $pg_port -v ON_ERROR_STOP=1" <<'SQL'
\getenv user INFMLLM_USER
\getenv password INFMLLM_PASSWORD
\getenv db INFMLLM_DB
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'user')
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'user', :'password')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SELECT format('CREATE ROLE %I NOLOGIN', r) FROM unnest(ARRAY['infmllm_worker', 'infmllm_client', 'infmllm_reader']) r
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)\gexec
SQL
    # A login user in each group role (the migrations grant the groups their rights), for running each part of the
    # system with only what it needs: INFMLLM_<WORKER|CLIENT|READER>_PASSWORD, default the login's name. The password
    # reaches psql through the environment (\getenv), never a command line; changing it changes the login's.
    local group
    for group in worker client reader; do
        local upper password_var
        upper=$(echo "$group" | tr '[:lower:]' '[:upper:]')
        password_var="INFMLLM_${upper}_PASSWORD"
        INFMLLM_LOGIN="${db_user}_${group}_login" INFMLLM_GROUP="infmllm_$group" \
            INFMLLM_LOGIN_PASSWORD="${!password_var:-${db_user}_${group}_login}" \
            su postgres -c "psql -q -p $pg_port -v ON_ERROR_STOP=1" <<'SQL'
\getenv login INFMLLM_LOGIN
\getenv password INFMLLM_LOGIN_PASSWORD
\getenv group INFMLLM_GROUP
SELECT format('CREATE ROLE %I LOGIN IN ROLE %I', :'login', :'group')
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'login')\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'login', :'password')\gexec
SQL
    done
}

pg_stop() {
    if pg_up; then
        pg_ctlcluster "$pg_version" "$pg_cluster" stop -m fast
        log "PostgreSQL stopped"
    else
        log "PostgreSQL already stopped"
    fi
}

rmq_start() {
    if rmq_up; then
        log "RabbitMQ already running"
        return
    fi
    if [[ $(id -u) == 0 ]]; then
        # As Debian's rabbitmq-server wrapper does (su to rabbitmq, not su -: the settings above pass through), but
        # with the soft limit on open files raised to the hard one (at most 65536): su leaves it at 1024, from which
        # the broker keeps about 830 for sockets and counts every quorum queue's files against the same sum, so
        # a few hundred queues leave no room for connections (new ones then hang at login).
        su rabbitmq -s /bin/sh -c 'hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=65536
            ulimit -n $((hard < 65536 ? hard : 65536)) || true
            cd /var/lib/rabbitmq && exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached' </dev/null >>"$rmq_log" 2>&1
    else
        rabbitmq-server -detached </dev/null >>"$rmq_log" 2>&1
    fi
    # `await_startup` right after -detached fails before the node registers with epmd; wait on the pid file.
    rabbitmqctl -q wait --timeout 90 "$rmq_pidfile" </dev/null >>"$rmq_log" 2>&1
    rabbitmqctl -q await_startup --timeout 90 </dev/null >>"$rmq_log" 2>&1
    log "RabbitMQ started on 127.0.0.1:5672"
}

rmq_stop() {
    if rmq_up; then
        rabbitmqctl -q shutdown </dev/null >>"$rmq_log" 2>&1
        log "RabbitMQ stopped"
    else
        log "RabbitMQ already stopped"
    fi
    epmd -kill </dev/null >/dev/null 2>&1 || true
}

status() {
    local rc=0
    if pg_up; then log "PostgreSQL $pg_version/$pg_cluster: running on 127.0.0.1:$pg_port"
    else log "PostgreSQL $pg_version/$pg_cluster: stopped"; rc=3; fi
    if rmq_up; then log "RabbitMQ: running ($(rabbitmqctl -q version </dev/null 2>>"$rmq_log")) on 127.0.0.1:5672"
    else log "RabbitMQ: stopped"; rc=3; fi
    return $rc
}

action=${1:-status}
which=${2:-all}
# Starting and stopping act as the services' own users (su postgres, su rabbitmq) and write under /etc and /var:
# root's work. Another user runs this again through sudo, keeping these settings.
if [[ $action != status && $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo --preserve-env=INFMLLM_PG_VERSION,INFMLLM_PG_CLUSTER,INFMLLM_PG_PORT,INFMLLM_DB_USER,INFMLLM_DB_PASSWORD,INFMLLM_DB_NAME,INFMLLM_WORKER_PASSWORD,INFMLLM_CLIENT_PASSWORD,INFMLLM_READER_PASSWORD \
            "$0" "$@"
    fi
    echo "ops/services.sh $action needs root (or sudo): it runs the services as their own users" >&2
    exit 1
fi
case "$action:$which" in
    start:all) pg_start; rmq_start ;;
    start:postgres) pg_start ;;
    start:rabbitmq) rmq_start ;;
    stop:all) rmq_stop; pg_stop ;;
    stop:postgres) pg_stop ;;
    stop:rabbitmq) rmq_stop ;;
    restart:all) rmq_stop; pg_stop; pg_start; rmq_start ;;
    restart:postgres) pg_stop; pg_start ;;
    restart:rabbitmq) rmq_stop; rmq_start ;;
    status:*) status ;;
    *) echo "usage: ops/services.sh start|stop|restart|status [postgres|rabbitmq]" >&2; exit 2 ;;
esac
