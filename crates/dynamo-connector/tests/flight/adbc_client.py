"""A Flight SQL client nobody here wrote: the ADBC Flight SQL driver.

Usage: adbc_client.py URI SPEC_JSON
SPEC_JSON: {"sessions": {NAME: TOKEN}, "queries": [SQL, ...], "bad_token": TOKEN,
            "errors": [[TOKEN, SQL], ...], "logins": [[USER, PASSWORD, SQL], ...]}

Prints one JSON document: per session, each query's rows (values as JSON:
ints, strings, null; decimals as strings) and the tables adbc_get_objects
lists; for the bad token, the ADBC status and message of the failure.
"""

import json
import sys
from decimal import Decimal

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions


def connect(uri, token):
    return flight_sql.connect(
        uri,
        db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"},
    )


def plain(value):
    if isinstance(value, Decimal):
        return str(value)
    return value


def rows(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    return {
        "columns": table.column_names,
        "rows": [[plain(v) for v in row.values()] for row in table.to_pylist()],
    }


def tables(conn, catalog=None, schema=None, table=None):
    objects = (
        conn.adbc_get_objects(
            depth="tables",
            catalog_filter=catalog,
            db_schema_filter=schema,
            table_name_filter=table,
        )
        .read_all()
        .to_pylist()
    )
    out = []
    for catalog in objects:
        for schema in catalog["catalog_db_schemas"] or []:
            for table in schema["db_schema_tables"] or []:
                out.append(
                    [catalog["catalog_name"], schema["db_schema_name"], table["table_name"], table["table_type"]]
                )
    return sorted(out)


def failure(uri, token, sql):
    try:
        with connect(uri, token) as conn:
            rows(conn, sql)
    except Exception as e:  # the driver's own exception types
        code = getattr(e, "status_code", None)
        return {"status": getattr(code, "name", type(e).__name__), "message": str(e)}
    return {"status": "no error", "message": ""}


def logged_in(uri, user, password, sql):
    """A BI tool's login: a user name and password (HTTP Basic authentication
    at the handshake), then the session token the server answers with."""
    try:
        with flight_sql.connect(uri, db_kwargs={"username": user, "password": password}) as conn:
            return {"status": "ok", "result": rows(conn, sql)}
    except Exception as e:  # the driver's own exception types
        code = getattr(e, "status_code", None)
        return {"status": getattr(code, "name", type(e).__name__), "message": str(e)}


def main():
    uri, spec = sys.argv[1], json.loads(sys.argv[2])
    out = {"sessions": {}}
    for name, token in spec["sessions"].items():
        with connect(uri, token) as conn:
            out["sessions"][name] = {
                "queries": [rows(conn, sql) for sql in spec["queries"]],
                "tables": tables(conn),
                # GetTables/GetCatalogs/GetDbSchemas with patterns and quoted
                # names: [catalog, schema, table] filters, each answered.
                "patterns": [tables(conn, *p) for p in spec.get("patterns", [])],
            }
    out["bad_token"] = failure(uri, spec["bad_token"], spec["queries"][0])
    out["errors"] = [failure(uri, t, sql) for t, sql in spec.get("errors", [])]
    out["logins"] = [logged_in(uri, u, p, sql) for u, p, sql in spec.get("logins", [])]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
