#!/usr/bin/env bash
# The test command: installs what is missing, starts the real PostgreSQL and RabbitMQ, builds, migrates the
# default database and runs every test (unit and integration) against those services.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/lib.sh

bash ops/install-deps.sh
bash ops/services.sh start
require_swift

step "checking formatting (.swift-format)"
swift format lint --strict --recursive Sources Tests Package.swift

step "building"
swift build --build-tests
step "migrating the default database"
"$(swift build --show-bin-path)/infmllm" migrate
step "fetching NVRTC (pip's nvidia-cuda-nvrtc) for the CUDA kernel compile tests"
INFMLLM_NVRTC_LIBRARY=$(tools/nvrtc.sh)
export INFMLLM_NVRTC_LIBRARY INFMLLM_REQUIRE_NVRTC=1
step "running the tests"
swift test --skip ServiceRestartTests --skip ConsumerTimeoutTests
step "running the service-restart, consumer-timeout, TLS and broker-cluster tests on their own (restarts, timing, brokers of their own)"
INFMLLM_RESTART_TESTS=1 swift test --filter ServiceRestartTests
INFMLLM_RESTART_TESTS=1 swift test --filter ConsumerTimeoutTests
INFMLLM_RESTART_TESTS=1 swift test --filter TLSTests
INFMLLM_RESTART_TESTS=1 swift test --filter BrokerClusterTests
