"""Writes through a Flight SQL client nobody here wrote: the ADBC driver.

Usage: adbc_writes.py URI WRITER_TOKEN READ_ONLY_TOKEN

As the writer: ExecuteUpdate of an UPDATE and a DELETE (ADBC's
execute_update), an INSERT run as a statement query (DB-API execute, which
answers the count as a row), and a bulk ingest (adbc_ingest, mode append)
of 50 rows. As the read-only client: the same ingest, which must be
refused. Prints one JSON document with each outcome.
"""

import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
from adbc_driver_flightsql import DatabaseOptions


def connect(uri, token):
    return flight_sql.connect(
        uri,
        db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"},
    )


def failure(call):
    try:
        call()
    except Exception as e:  # the driver's own exception types
        code = getattr(e, "status_code", None)
        return {"status": getattr(code, "name", type(e).__name__), "message": str(e)}
    return {"status": "no error", "message": ""}


def ingested():
    n = 50
    return pa.table(
        {
            "userId": pa.array([f"ingest{i % 5}" for i in range(n)]),
            "eventTime": pa.array(range(5000, 5000 + n), pa.int64()),
            "engagementScore": pa.array([i * 2 for i in range(n)], pa.int64()),
        }
    )


def update(conn, sql):
    with conn.cursor() as cur:
        cur.adbc_statement.set_sql_query(sql)
        return cur.adbc_statement.execute_update()


def main():
    uri, writer, reader = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {}
    with connect(uri, writer) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO \"UserEngagement\" (\"userId\", \"eventTime\", \"engagementScore\") "
                "VALUES ('adbc', 1, 7), ('adbc', 2, 8)"
            )
            out["insert"] = cur.fetch_arrow_table().to_pylist()
        out["update"] = update(
            conn, "UPDATE \"UserEngagement\" SET \"engagementScore\" = 70 WHERE \"userId\" = 'adbc' AND \"eventTime\" = 1"
        )
        out["delete"] = update(
            conn, "DELETE FROM \"UserEngagement\" WHERE \"userId\" = 'adbc' AND \"eventTime\" = 2"
        )
        with conn.cursor() as cur:
            out["ingest"] = cur.adbc_ingest("UserEngagement", ingested(), mode="append")
        conn.commit()
        out["ingest_again"] = failure(
            lambda: conn.cursor().adbc_ingest("UserEngagement", ingested(), mode="append")
        )
        out["create"] = failure(
            lambda: conn.cursor().adbc_ingest("NewTable", ingested(), mode="create")
        )
    with connect(uri, reader) as conn:
        out["read_only_ingest"] = failure(
            lambda: conn.cursor().adbc_ingest("UserEngagement", ingested(), mode="append")
        )
        out["read_only_update"] = failure(
            lambda: update(conn, "DELETE FROM \"UserEngagement\" WHERE \"userId\" = '999'")
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
