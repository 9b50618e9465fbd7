#!/usr/bin/env bash
# Prints the path of an NVRTC library for the kernel compile tests on machines without CUDA: pip's
# nvidia-cuda-nvrtc wheel (NVRTC and its headers, no driver), fetched with a virtual environment's pip and unpacked
# once into .build/nvrtc.
set -euo pipefail
cd "$(dirname "$0")/.."
version=13.5.37
folder=.build/nvrtc/$version
library=$folder/nvidia/cu13/lib/libnvrtc.so.13
if [[ ! -f $library ]]; then
    download=$(mktemp -d)
    trap 'rm -rf "$download"' EXIT
    [[ -x .build/venv-nvrtc/bin/pip ]] || python3 -m venv .build/venv-nvrtc >&2
    .build/venv-nvrtc/bin/pip download -q --no-deps --only-binary=:all: --dest "$download" \
        "nvidia-cuda-nvrtc==$version" >&2
    mkdir -p "$folder"
    python3 -m zipfile -e "$download"/nvidia_cuda_nvrtc-*.whl "$folder"
fi
echo "$PWD/$library"
