"""Writes Parquet files the way other tools write them, for the tests of this project's Parquet reader: one table of
every flat column kind (nulls, NaN, -0.0, unsigned and 64-bit extremes, non-UTF-8 bytes, long strings, decimals,
dates, timestamps, dictionary strings) beside nested ones (a list, a struct, a map), written by pyarrow with every
codec it has, with and without dictionaries, data pages of versions 1 and 2, small pages and row groups, the DELTA_*
and BYTE_STREAM_SPLIT encodings and INT96 timestamps, by DuckDB (SNAPPY and ZSTD) and by Polars (its defaults:
ZSTD, dictionaries for some columns; LZ4, small pages and row groups). Beside each
file, NAME.parquet.json holds what the reader must give: the top-level fields (name, and whether nested) and every
row's flat values, each as [kind, value]: ["i", "123"], ["d", repr(float)], ["s", text], ["b", hex], ["t", bool],
or null.

    python parquet_write.py FOLDER

The Parquet reader's tests run it with the Python of tools/parquet_readers.sh.
"""

import datetime
import decimal
import json
import os
import sys

import duckdb
import polars
import pyarrow as pa
import pyarrow.parquet as pq

folder = sys.argv[1]
os.makedirs(folder, exist_ok=True)
ROWS = 1000


def table():
    texts = ["a dog on a sofa", "", "café 👍\n\"quoted\"", "x" * 3000, "caption"]
    columns = {
        "id": pa.array(range(ROWS), pa.int64()),
        "url": pa.array([f"https://example.com/images/{i:06d}.jpg" for i in range(ROWS)], pa.string()),
        "i32": pa.array([None if i % 7 == 0 else (i * 7919) % 100003 - 50000 for i in range(ROWS)], pa.int32()),
        "u32": pa.array([None if i % 11 == 0 else 4294967295 - i for i in range(ROWS)], pa.uint32()),
        "u64": pa.array([18446744073709551615 if i == 3 else i for i in range(ROWS)], pa.uint64()),
        "small": pa.array([i % 256 - 128 for i in range(ROWS)], pa.int8()),
        "f32": pa.array([None if i % 5 == 0 else float("nan") if i == 1 else i / 10 for i in range(ROWS)],
                        pa.float32()),
        "f64": pa.array([None if i % 3 == 0 else [-0.0, 1e-300, float("inf"), 0.1][i % 4] * (i + 1)
                         for i in range(ROWS)], pa.float64()),
        "flag": pa.array([None if i % 13 == 0 else i % 2 == 0 for i in range(ROWS)], pa.bool_()),
        "text": pa.array([None if i % 4 == 1 else texts[i % 5] for i in range(ROWS)], pa.string()),
        "bin": pa.array([None if i % 6 == 0 else bytes([i % 256, 0xFF, 0xFE]) for i in range(ROWS)], pa.binary()),
        "fixed": pa.array([bytes([i % 256, 1, 2]) for i in range(ROWS)], pa.binary(3)),
        "dec": pa.array([None if i % 9 == 0 else decimal.Decimal(i * 25 - 12000) / 100 for i in range(ROWS)],
                        pa.decimal128(9, 2)),
        "day": pa.array([datetime.date(1969, 12, 25) + datetime.timedelta(days=i * 37) for i in range(ROWS)],
                        pa.date32()),
        "ts": pa.array([None if i % 8 == 0 else i * 86_400_123 for i in range(ROWS)], pa.timestamp("ms")),
        "cat": pa.array([["cat", "dog", None, "bird"][i % 4] for i in range(ROWS)],
                        pa.string()).dictionary_encode(),
        "tags": pa.array([None if i % 5 == 0 else ["a", "b"][: i % 3] for i in range(ROWS)], pa.list_(pa.string())),
        "point": pa.array([{"x": float(i), "y": -float(i)} for i in range(ROWS)],
                          pa.struct([("x", pa.float64()), ("y", pa.float64())])),
        "props": pa.array([[("k", str(i))] for i in range(ROWS)], pa.map_(pa.string(), pa.string())),
    }
    schema = pa.schema([pa.field(name, array.type, nullable=name not in ("id", "url", "fixed"))
                        for name, array in columns.items()])
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


def typed(value, kind, int96=False):
    """A value as the reader gives it, tagged with its kind."""
    if value is None:
        return None
    if pa.types.is_boolean(kind):
        return ["t", value]
    if pa.types.is_integer(kind):
        return ["i", str(value)] if value < 2**63 else ["d", repr(float(value))]
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return ["d", repr(float(value))]
    if pa.types.is_date(kind):
        return ["s", value.isoformat()]
    if pa.types.is_timestamp(kind):
        # The raw count of the type's unit (the column cast to int64); INT96 holds nanoseconds.
        if not int96:
            return ["i", str(value)]
        nanoseconds = value * {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[kind.unit]
        days, rest = divmod(nanoseconds, 86_400 * 10**9)
        seconds, fraction = divmod(rest, 10**9)
        text = (datetime.date(1970, 1, 1) + datetime.timedelta(days=days)).isoformat() + "T"
        text += f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return ["s", text + (f".{fraction:09d}" if fraction else "") + "Z"]
    if pa.types.is_dictionary(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind) \
            or pa.types.is_string_view(kind):
        return ["s", value]
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind) \
            or pa.types.is_fixed_size_binary(kind):
        return ["b", value.hex()]
    raise ValueError(f"no tag for {kind}")


def expectation(path, data, int96=False):
    nested = [pa.types.is_nested(field.type) for field in data.schema]
    flat = [field for field, deep in zip(data.schema, nested) if not deep]
    values = [data.column(field.name).cast(pa.int64()) if pa.types.is_timestamp(field.type)
              else data.column(field.name) for field in flat]
    rows = [[typed(value, field.type, int96) for field, value in zip(flat, row)]
            for row in zip(*[column.to_pylist() for column in values])]
    report = {"fields": [{"name": field.name, "nested": deep} for field, deep in zip(data.schema, nested)],
              "row_groups": pq.ParquetFile(path).metadata.num_row_groups, "rows": rows}
    with open(path + ".json", "w") as out:
        json.dump(report, out, ensure_ascii=False)


data = table()
delta = {"id": "DELTA_BINARY_PACKED", "i32": "DELTA_BINARY_PACKED", "text": "DELTA_BYTE_ARRAY",
         "bin": "DELTA_LENGTH_BYTE_ARRAY", "url": "DELTA_BYTE_ARRAY", "f64": "BYTE_STREAM_SPLIT",
         "f32": "BYTE_STREAM_SPLIT"}
written = []
for codec in ["none", "snappy", "gzip", "zstd", "lz4"]:
    for dictionary in [True, False]:
        for page in ["1.0", "2.0"]:
            name = f"pyarrow-{codec}-{'dict' if dictionary else 'plain'}-v{page[0]}.parquet"
            pq.write_table(data, os.path.join(folder, name), compression=codec, use_dictionary=dictionary,
                           data_page_version=page, data_page_size=2048, row_group_size=300, write_batch_size=100)
            written.append((name, False))
for page in ["1.0", "2.0"]:
    name = f"pyarrow-delta-v{page[0]}.parquet"
    pq.write_table(data, os.path.join(folder, name), compression="snappy", use_dictionary=False,
                   column_encoding=delta, data_page_version=page, data_page_size=4096, row_group_size=400)
    written.append((name, False))
pq.write_table(data, os.path.join(folder, "pyarrow-int96.parquet"), use_deprecated_int96_timestamps=True,
               store_decimal_as_integer=True)
written.append(("pyarrow-int96.parquet", True))
for codec in ["snappy", "zstd"]:
    name = f"duckdb-{codec}.parquet"
    flat = data.select([field.name for field in data.schema
                        if not pa.types.is_nested(field.type) and field.name not in ("u64", "cat")])
    connection = duckdb.connect()
    connection.register("flat", flat)
    connection.execute(f"COPY flat TO '{os.path.join(folder, name)}' "
                       f"(FORMAT PARQUET, ROW_GROUP_SIZE 256, COMPRESSION {codec})")
    written.append((name, False))
    expectation(os.path.join(folder, name), pq.read_table(os.path.join(folder, name)))
# Polars writes from its own Parquet code (not Arrow C++'s); its frame has no unsigned 64-bit extremes or dictionary
# strings beyond Categorical, so it takes the flat columns it holds as they are.
frame = polars.from_arrow(
    data.select([field.name for field in data.schema if field.name not in ("u64", "cat", "props")]))
for name, options in [("polars-default.parquet", {}),
                      ("polars-lz4-small.parquet", {"compression": "lz4", "row_group_size": 300,
                                                    "data_page_size": 2048})]:
    frame.write_parquet(os.path.join(folder, name), **options)
    written.append((name, False))
    expectation(os.path.join(folder, name), pq.read_table(os.path.join(folder, name)))
for name, int96 in written:
    if name.startswith("pyarrow"):
        expectation(os.path.join(folder, name), data, int96)
# A codec this reader does not decode, for its error.
pq.write_table(data.select(["id"]), os.path.join(folder, "codec-brotli.parquet"), compression="brotli")
pq.write_table(data.slice(0, 0), os.path.join(folder, "empty.parquet"))
