"""The differential fuzzer's oracle: DuckDB, an engine nobody here wrote.

Speaks JSON lines on stdin/stdout (tests/integration/oracle/duck.rs):
  {"op": "load", "table": NAME, "columns": [[NAME, TYPE], ...], "rows": [[VALUE, ...], ...]}
  {"op": "query", "sql": SQL}
answering {"ok": true, "rows": [[CANON, ...], ...]} or {"ok": false, "error": TEXT}.

TYPE: "int" | "str" | "bin" | "bool" | {"dec": SCALE} | {"list": TYPE} |
{"struct": [[NAME, TYPE], ...]}. VALUE: null, a JSON integer ("int"), the exact
decimal text ("dec"), hex text ("bin"), a string, a boolean, a list, an object.
Rows reach DuckDB through an Arrow table built from these declared types, so the
oracle never sees how the project typed or decoded anything.

CANON (what the fuzzer compares): null, {"bool": B}, {"n": EXACT DECIMAL TEXT},
{"f": FLOAT}, {"s": TEXT}, {"b": HEX}, {"l": [CANON, ...]}, {"m": {NAME: CANON}}.
"""

import datetime
import decimal
import json
import math
import sys

import duckdb
import pyarrow as pa


def arrow_type(t):
    if t == "int":
        return pa.int64()
    if t == "str":
        return pa.string()
    if t == "bin":
        return pa.binary()
    if t == "bool":
        return pa.bool_()
    if "dec" in t:
        return pa.decimal128(38, t["dec"])
    if "list" in t:
        return pa.list_(arrow_type(t["list"]))
    if "struct" in t:
        return pa.struct([(name, arrow_type(ft)) for name, ft in t["struct"]])
    raise ValueError(f"unknown column type {t!r}")


def value(t, v):
    if v is None:
        return None
    if t == "bin":
        return bytes.fromhex(v)
    if isinstance(t, dict) and "dec" in t:
        return decimal.Decimal(v)
    if isinstance(t, dict) and "list" in t:
        return [value(t["list"], x) for x in v]
    if isinstance(t, dict) and "struct" in t:
        return {name: value(ft, v.get(name)) for name, ft in t["struct"]}
    return v


def canon(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"n": str(v)}
    if isinstance(v, decimal.Decimal):
        return {"n": format(v, "f")}
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return {"f": str(v)}
        return {"f": v}
    if isinstance(v, str):
        return {"s": v}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b": bytes(v).hex()}
    if isinstance(v, (list, tuple)):
        return {"l": [canon(x) for x in v]}
    if isinstance(v, dict):
        return {"m": {k: canon(x) for k, x in v.items()}}
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
        return {"s": v.isoformat()}
    raise TypeError(f"cannot compare a {type(v).__name__}")


def main():
    con = duckdb.connect()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "load":
                columns = request["columns"]
                schema = pa.schema([(name, arrow_type(t)) for name, t in columns])
                rows = [
                    {name: value(t, row[i]) for i, (name, t) in enumerate(columns)}
                    for row in request["rows"]
                ]
                staged = pa.Table.from_pylist(rows, schema=schema)  # noqa: F841 (read by DuckDB by name)
                name = request["table"].replace('"', '""')
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM staged')
                answer = {"ok": True, "rows": []}
            elif request["op"] == "query":
                rows = con.execute(request["sql"]).fetchall()
                answer = {"ok": True, "rows": [[canon(v) for v in row] for row in rows]}
            else:
                answer = {"ok": False, "error": f"unknown op {request['op']!r}"}
        except Exception as e:  # the fuzzer reports it with the query
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
