#!/usr/bin/env bash
# Prints the path of a Python with pyarrow, for the tests that read this project's Parquet files with it: a virtual
# environment in .build/venv-pyarrow, made once with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
version=17.0.0
venv=.build/venv-pyarrow
if ! "$venv/bin/python" -c "import pyarrow, sys; sys.exit(pyarrow.__version__ != '$version')" 2>/dev/null; then
    [[ -x $venv/bin/pip ]] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --only-binary=:all: "pyarrow==$version" >&2
fi
echo "$PWD/$venv/bin/python"
