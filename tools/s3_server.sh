#!/usr/bin/env bash
# Prints the path of moto's S3 server (moto_server), a real HTTP server speaking the S3 API, for the tests that read
# s3:// objects: a virtual environment in .build/venv-s3, made once with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
version=5.2.6
venv=.build/venv-s3
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$version')" 2>/dev/null; then
    [[ -x $venv/bin/pip ]] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "moto[server]==$version" >&2
fi
echo "$PWD/$venv/bin/moto_server"
