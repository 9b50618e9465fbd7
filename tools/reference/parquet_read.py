"""Reads a Parquet file with two independent readers, pyarrow (under pandas and Hugging Face datasets) and DuckDB,
and writes what they found as JSON: each column's Arrow type and nullability, the row groups' row counts and column
statistics, the created-by string, the rows (pyarrow's), every double's repr (JSON cannot tell -0.0 or NaN), whether
DuckDB read the same rows, and whether the column chunks' sizes add up to the file's.

    python parquet_read.py FILE.parquet OUT.json

The Parquet tests run it (ops/test.sh installs the readers with tools/parquet_readers.sh) on files this project
writes.
"""

import json
import math
import os
import sys

import duckdb
import pyarrow.parquet as pq

source, destination = sys.argv[1], sys.argv[2]
parquet = pq.ParquetFile(source)
table = parquet.read()
rows = table.to_pylist()
meta = parquet.metadata


def statistics(column):
    stats = column.statistics
    if stats is None:
        return None
    report = {"null_count": stats.null_count if stats.has_null_count else None}
    if stats.has_min_max:
        report["min"], report["max"] = stats.min, stats.max
    return report


groups = []
chunk_bytes = 0
for index in range(meta.num_row_groups):
    group = meta.row_group(index)
    columns = {}
    for column_index in range(group.num_columns):
        column = group.column(column_index)
        chunk_bytes += column.total_compressed_size
        columns[column.path_in_schema] = statistics(column)
    groups.append({"rows": group.num_rows, "statistics": columns})


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


names = [field.name for field in table.schema]
duck = duckdb.sql(f"SELECT * FROM read_parquet('{source}')").fetchall()
duckdb_agrees = len(duck) == len(rows) and all(
    same(row[name], value) for row, values in zip(rows, duck) for name, value in zip(names, values)
)
footer = meta.serialized_size
report = {
    "types": {field.name: str(field.type) for field in table.schema},
    "nullable": {field.name: field.nullable for field in table.schema},
    "row_groups": [group["rows"] for group in groups],
    "statistics": [group["statistics"] for group in groups],
    "created_by": meta.created_by,
    "rows": rows,
    "double_repr": {
        field.name: [repr(row[field.name]) for row in rows] for field in table.schema if str(field.type) == "double"
    },
    "duckdb_agrees": duckdb_agrees,
    "sizes_agree": 4 + chunk_bytes + footer + 8 == os.path.getsize(source),
}
with open(destination, "w", encoding="utf-8") as out:
    json.dump(report, out, ensure_ascii=False, default=str)
