#!/usr/bin/env bash
# Packs what the GPU checks need on a machine with an NVIDIA GPU but no Swift: the release `infmllm`, the test
# runner, the test fixtures and every shared library they load that a bare CUDA image may lack (Swift's runtime,
# OpenBLAS, libpq, librabbitmq, libcurl, ...), as one compressed archive.
#
#   tools/gpu_kit.sh OUT_DIR      then, on the GPU machine, in a checkout of the same commit:
#   tar -xJf OUT_DIR/kit.tar.xz && tools/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?give an output folder}
mkdir -p "$out"
swift build --build-tests >/dev/null
swift build -c release --product infmllm >/dev/null
debug=$(swift build --show-bin-path)
release=$(swift build -c release --show-bin-path)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu-kit/lib" "$stage/gpu-kit/tests"
strip -o "$stage/gpu-kit/infmllm" "$release/infmllm"
strip -o "$stage/gpu-kit/tests/infmllmPackageTests.xctest" "$debug/infmllmPackageTests.xctest"
cp -r "$debug"/*.resources "$stage/gpu-kit/tests/"
# Everything both programs load except the C and C++ runtimes, which the GPU machine has in newer versions.
{ ldd "$release/infmllm"; ldd "$debug/infmllmPackageTests.xctest"; } | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so' | while read -r library; do
    cp -L "$library" "$stage/gpu-kit/lib/"
done
# The tests find their fixtures by the path they were built at.
echo "$PWD" >"$stage/gpu-kit/build-root"
tar -C "$stage" -cJf "$out/kit.tar.xz" gpu-kit
ls -la "$out/kit.tar.xz"
