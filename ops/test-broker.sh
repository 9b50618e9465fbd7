#!/usr/bin/env bash
# A second, throwaway RabbitMQ node for tests that need broker settings the shared one must not have (a consumer
# timeout of seconds, say): its own node name, port, data directory and configuration, on loopback only.
#
#   ops/test-broker.sh start DIR PORT CONSUMER_TIMEOUT_MS
#   ops/test-broker.sh stop DIR PORT
#
# The channel tick (how often the broker checks consumer timeouts) is set to half a second, so a short timeout takes
# effect within a second of passing.
set -euo pipefail

action=$1 dir=$2 port=$3
node=infmllm-test-$port@localhost
export RABBITMQ_NODENAME=$node RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$((port + 20000)) ERL_EPMD_ADDRESS=127.0.0.1
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
    stop)
        rabbitmqctl -q shutdown </dev/null >>"$dir/out.log" 2>&1 || true
        ;;
    *) echo "usage: ops/test-broker.sh start DIR PORT CONSUMER_TIMEOUT_MS | stop DIR PORT" >&2; exit 2 ;;
esac
