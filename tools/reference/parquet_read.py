"""Reads a Parquet file with pyarrow, the reader pandas, Hugging Face datasets and most tools build on, and writes
what it found as JSON: each column's Arrow type, the row groups' row counts, the created-by string and the rows.

    python parquet_read.py FILE.parquet OUT.json

The Parquet tests run it (ops/test.sh installs pyarrow with tools/pyarrow.sh) on files this project writes.
"""

import json
import sys

import pyarrow.parquet as pq

source, destination = sys.argv[1], sys.argv[2]
parquet = pq.ParquetFile(source)
table = parquet.read()
report = {
    "types": {field.name: str(field.type) for field in table.schema},
    "nullable": {field.name: field.nullable for field in table.schema},
    "row_groups": [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)],
    "created_by": parquet.metadata.created_by,
    "rows": table.to_pylist(),
}
with open(destination, "w", encoding="utf-8") as out:
    json.dump(report, out, ensure_ascii=False)
