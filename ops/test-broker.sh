#!/usr/bin/env bash
# A second, throwaway RabbitMQ node for tests that need broker settings the shared one must not have (a consumer
# timeout of seconds, say): its own node name, port, data directory and configuration, on loopback only.
#
#   ops/test-broker.sh start DIR PORT CONSUMER_TIMEOUT_MS
#   ops/test-broker.sh start-tls DIR PORT        TLS only (amqps), with a CA made for it: DIR/tls/ca.pem, and an
#                                                unrelated DIR/tls/other-ca.pem for refusal tests
#   ops/test-broker.sh join DIR PORT SEED_PORT   the started node of PORT joins the cluster of the node of SEED_PORT
#   ops/test-broker.sh stop DIR PORT
#
# The channel tick (how often the broker checks consumer timeouts) is set to half a second, so a short timeout takes
# effect within a second of passing.
set -euo pipefail

action=$1 dir=$2 port=$3
node=infmllm-test-$port@localhost
export RABBITMQ_NODENAME=$node RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$((port > 45000 ? port - 20000 : port + 20000)) ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
export RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/pid
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins

case "$action" in
    start)
        mkdir -p "$dir"
        printf 'listeners.tcp.default = 127.0.0.1:%s\nconsumer_timeout = %s\n' "$port" "$4" >"$dir/rabbitmq.conf"
        echo '[{rabbit, [{channel_tick_interval, 500}]}].' >"$dir/advanced.config"
        echo '[].' >"$dir/enabled_plugins"
        # The server runs as the rabbitmq user when started as root.
        if [ "$(id -u)" = 0 ]; then chown -R rabbitmq:rabbitmq "$dir"; fi
        rabbitmq-server -detached </dev/null >>"$dir/out.log" 2>&1
        rabbitmqctl -q wait --timeout 90 "$dir/pid" </dev/null >>"$dir/out.log" 2>&1
        rabbitmqctl -q await_startup --timeout 90 </dev/null >>"$dir/out.log" 2>&1
        ;;
    start-tls)
        tls=$dir/tls
        mkdir -p "$tls"
        for ca in ca other-ca; do
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=infmllm test $ca" \
                -keyout "$tls/$ca.key" -out "$tls/$ca.pem" >/dev/null 2>&1
        done
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" \
            -out "$tls/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
            -extfile "$tls/san.ext" -out "$tls/server.pem" >/dev/null 2>&1
        cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$port
ssl_options.cacertfile = $tls/ca.pem
ssl_options.certfile = $tls/server.pem
ssl_options.keyfile = $tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
        echo '[].' >"$dir/advanced.config"
        echo '[].' >"$dir/enabled_plugins"
        if [ "$(id -u)" = 0 ]; then chown -R rabbitmq:rabbitmq "$dir"; chmod a+r "$tls"/*.pem; fi
        rabbitmq-server -detached </dev/null >>"$dir/out.log" 2>&1
        rabbitmqctl -q wait --timeout 90 "$dir/pid" </dev/null >>"$dir/out.log" 2>&1
        rabbitmqctl -q await_startup --timeout 90 </dev/null >>"$dir/out.log" 2>&1
        ;;
    join)
        {
            rabbitmqctl -q stop_app
            rabbitmqctl -q join_cluster "infmllm-test-$4@localhost"
            rabbitmqctl -q start_app
            rabbitmqctl -q await_startup --timeout 90
        } </dev/null >>"$dir/out.log" 2>&1
        ;;
    stop)
        rabbitmqctl -q shutdown </dev/null >>"$dir/out.log" 2>&1 || true
        ;;
    *) echo "usage: ops/test-broker.sh start DIR PORT CONSUMER_TIMEOUT_MS | start-tls DIR PORT | join DIR PORT SEED_PORT | stop DIR PORT" >&2; exit 2 ;;
esac
