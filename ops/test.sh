#!/usr/bin/env bash
# The test command: installs what is missing, starts the real PostgreSQL and RabbitMQ, builds, migrates the
# default database and runs every test (unit and integration) against those services.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/lib.sh

bash ops/install-deps.sh
bash ops/services.sh start
require_swift

# What test runs that were cut short (killed, or a machine that went away) left in the shared services: their
# queues (quorum queues, each a Raft log the broker recovers on every start) and their databases. A finished run
# removes its own; names made by tests carry a random hexadecimal id after these prefixes.
remove_leftovers() {
    local queues='^infmllm-(system|enqueue|cli-test|test)-[0-9a-f]+[.]' queue database
    local pg_port=${INFMLLM_PG_PORT:-5432}
    # All at once inside the broker (hundreds take a second); one rabbitmqctl call a queue where that fails.
    if ! rabbitmqctl -q eval "
        Gone = [rabbit_amqqueue:delete(Q, false, false, <<\"ops/test.sh\">>)
                || Q <- rabbit_amqqueue:list(<<\"/\">>),
                   re:run(element(4, amqqueue:get_name(Q)), \"$queues\") =/= nomatch],
        io:format(\"~b queues of earlier test runs removed~n\", [length(Gone)]), ok." </dev/null 2>/dev/null; then
        while read -r queue; do
            rabbitmqctl -q delete_queue "$queue" </dev/null >/dev/null 2>&1 || true
        done < <(rabbitmqctl -q list_queues name </dev/null 2>/dev/null | grep -E "$queues" || true)
    fi
    while read -r database; do
        su postgres -c "psql -q -p $pg_port -c 'DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)'" </dev/null >/dev/null ||
            true
    done < <(su postgres -c "psql -p $pg_port -Atc 'SELECT datname FROM pg_database'" </dev/null |
        grep -E '^infmllm_(system|enqueue|cli|test)_[0-9a-f]+$' || true)
}

# On a failure: the state of the shared services, to tell a broker or database in trouble (an alarm, descriptors
# used up, a full disk) from a failing test.
report_services() {
    step "the services after the failure"
    rabbitmq-diagnostics -q alarms </dev/null 2>&1 | head -20 || true
    rabbitmq-diagnostics -q status </dev/null 2>&1 | grep -A3 -E "File Descriptors|Memory|Free Disk" || true
    echo "queues: $(rabbitmqctl -q list_queues name </dev/null 2>/dev/null | wc -l)," \
        "connections: $(rabbitmqctl -q list_connections name </dev/null 2>/dev/null | wc -l)"
    grep -iE 'alarm|descriptor|file handle|emfile|enfile|enospc|timeout' "/var/log/rabbitmq/rabbit@$(hostname -s).log" \
        2>/dev/null | grep -v 'boot step' | tail -n 15 || true
    df -h /var/lib/rabbitmq /var/lib/postgresql /tmp 2>&1 || true
    free -m || true
}
trap report_services ERR

step "removing queues and databases that interrupted test runs left"
remove_leftovers

step "checking formatting (.swift-format)"
swift format lint --strict --recursive Sources Tests Package.swift

step "building"
swift build --build-tests
step "migrating the default database"
"$(swift build --show-bin-path)/infmllm" migrate
step "fetching NVRTC (pip's nvidia-cuda-nvrtc) for the CUDA kernel compile tests"
INFMLLM_NVRTC_LIBRARY=$(tools/nvrtc.sh)
export INFMLLM_NVRTC_LIBRARY INFMLLM_REQUIRE_NVRTC=1
step "fetching pyarrow and DuckDB (pip) for the tests that read the Parquet files this project writes"
INFMLLM_PARQUET_PYTHON=$(tools/parquet_readers.sh)
export INFMLLM_PARQUET_PYTHON INFMLLM_REQUIRE_PARQUET=1
step "fetching moto's S3 server (pip) for the tests that read s3:// objects"
INFMLLM_S3_SERVER=$(tools/s3_server.sh)
export INFMLLM_S3_SERVER INFMLLM_REQUIRE_S3=1
step "running the tests"
swift test --skip ServiceRestartTests --skip ConsumerTimeoutTests
step "running the service-restart, consumer-timeout, TLS and broker-cluster tests on their own" \
    "(restarts, timing, brokers of their own)"
INFMLLM_RESTART_TESTS=1 swift test --filter ServiceRestartTests
INFMLLM_RESTART_TESTS=1 swift test --filter ConsumerTimeoutTests
INFMLLM_RESTART_TESTS=1 swift test --filter TLSTests
INFMLLM_RESTART_TESTS=1 swift test --filter BrokerClusterTests
