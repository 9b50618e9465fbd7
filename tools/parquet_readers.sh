#!/usr/bin/env bash
# Prints the path of a Python with pyarrow and DuckDB, two independent Parquet readers, for the tests that read this
# project's Parquet files with them, and Polars, a third writer, for the tests of this project's reader: a virtual
# environment in .build/venv-parquet, made once with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
pyarrow=17.0.0
duckdb=1.1.3
polars=2.1.0
venv=.build/venv-parquet
check="import duckdb, polars, pyarrow, sys
sys.exit((pyarrow.__version__, duckdb.__version__, polars.__version__) != ('$pyarrow', '$duckdb', '$polars'))"
if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    [[ -x $venv/bin/pip ]] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --only-binary=:all: "pyarrow==$pyarrow" "duckdb==$duckdb" "polars==$polars" >&2
fi
echo "$PWD/$venv/bin/python"
