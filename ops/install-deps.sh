#!/usr/bin/env bash
# Installs the Debian packages that infmllm builds against and the services it talks to, when missing.
# Idempotent: a second run installs nothing. Needs root (or sudo) and Debian 12's `main` archive.
set -euo pipefail

packages=(
    pkg-config
    librabbitmq-dev libpq-dev libopenblas-dev libjpeg-dev libpng-dev libwebp-dev libgif-dev libheif-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev
    rabbitmq-server postgresql postgresql-client nginx-light zip prometheus curl
    python3-venv  # the tests fetch NVRTC, kubernetes-validate and the Parquet readers with pip, each in a virtual environment
)
# docker-compose (v1, Debian's) only validates docker-compose.yml in the tests; no engine is needed for that.
if [[ "${INFMLLM_SKIP_COMPOSE:-0}" != 1 ]]; then packages+=(docker-compose); fi

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

# libheif1 before Debian's 1.15.1-1+deb12u2 does not hold a coded image to the size its container declares, which
# the HEIF decoder's pixel limit relies on: upgrade an older one.
heif=$(dpkg-query -W -f='${Version}' libheif1 2>/dev/null || true)
if [[ -n $heif ]] && dpkg --compare-versions "$heif" lt 1.15.1-1+deb12u2; then missing+=(libheif1); fi

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi

sudo=""
if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
# policy-rc.d on minimal images refuses to start services during install; ops/services.sh starts them instead.
# Through env: sudo would drop DEBIAN_FRONTEND set before it, and debconf could then stop to ask (tzdata).
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
