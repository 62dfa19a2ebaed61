"""dynamo_datafusion in datafusion-python, against DynamoDB Local."""

import _thread
import csv
import io
import os
import signal
import subprocess
import threading
import time

import boto3
import pytest
from datafusion import SessionConfig, SessionContext

from dynamo_datafusion import DynamoCatalog, DynamoTable, explain

REGION = "us-east-1"

QUERIES = [
    "SELECT count(*) AS n, sum(score) AS total FROM Events",
    "SELECT kind, count(*) AS n, max(score) AS top FROM Events GROUP BY kind ORDER BY kind",
    "SELECT eventTime, score FROM Events WHERE userId = 'u07' AND eventTime BETWEEN 1003 AND 1010 ORDER BY eventTime",
    "SELECT userId, eventTime, kind FROM Events WHERE userId IN ('u01', 'u02') AND score > 30 ORDER BY userId, eventTime",
]


def session():
    # DynamoDB names are case-sensitive, as in dynamo-sql.
    return SessionContext(
        SessionConfig().set("datafusion.sql_parser.enable_ident_normalization", "false")
    )


def rows(df):
    """Rows as lists of strings, in result order."""
    table = df.to_arrow_table()
    return [[str(v) for v in row.values()] for row in table.to_pylist()]


def dynamo_sql(endpoint, sql):
    """dynamo-sql's answer (CSV) as lists of strings, header dropped."""
    binary = os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/dynamo-connector/target")),
        "debug",
        "dynamo-sql",
    )
    out = subprocess.run(
        [binary, "--endpoint-url", endpoint, "--region", REGION, "--format", "csv", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(csv.reader(io.StringIO(out.stdout)))[1:]


def test_answers_equal_dynamo_sql(endpoint, events):
    ctx = session()
    ctx.register_table("events", DynamoTable(events, endpoint_url=endpoint, region=REGION))
    for sql in QUERIES:
        # Registered names are normalized by datafusion-python: `events`.
        got = rows(ctx.sql(sql.replace("FROM Events", "FROM events")))
        assert got, f"{sql}: the test needs rows"
        assert got == dynamo_sql(endpoint, sql), sql


def test_a_partition_key_query_is_a_query_not_a_scan(proxy, events):
    ctx = session()
    ctx.register_table("events", DynamoTable(events, endpoint_url=proxy.endpoint, region=REGION))
    proxy.take()  # DescribeTable and the schema sample
    got = rows(ctx.sql("SELECT count(*) FROM events WHERE userId = 'u03'"))
    assert got == [["30"]]
    counts = proxy.take()
    assert counts.get("Query", 0) >= 1 and "Scan" not in counts, counts
    got = rows(ctx.sql("SELECT score FROM events WHERE userId = 'u03' AND eventTime = 1004"))
    assert got == [[str((3 * 7 + 4) % 100)]]
    counts = proxy.take()
    assert counts == {"GetItem": 1}, counts
    # Without a key condition: a Scan, as it must.
    rows(ctx.sql("SELECT count(*) FROM events WHERE score > 90"))
    assert proxy.take().get("Scan", 0) >= 1


def test_table_options_as_keyword_arguments(endpoint, events):
    table = DynamoTable(events, endpoint_url=endpoint, region=REGION, segments=4, consistent_read=True)
    ctx = session()
    ctx.register_table("events", table)
    assert rows(ctx.sql("SELECT count(*) FROM events")) == [["600"]]
    assert "score: " in table.describe() and table.name == "Events"


def test_errors_are_python_exceptions_with_the_providers_messages(endpoint, events):
    with pytest.raises(RuntimeError, match="'NoSuchTable' does not exist"):
        DynamoTable("NoSuchTable", endpoint_url=endpoint, region=REGION)
    with pytest.raises(ValueError, match="invalid DynamoDB table option 'segmnts'"):
        DynamoTable(events, endpoint_url=endpoint, region=REGION, segmnts=3)
    with pytest.raises(ValueError, match="'read_capacity'"):
        DynamoTable(events, endpoint_url=endpoint, region=REGION, read_capacity="lots")


def test_a_ceiling_refusal_names_the_python_option_and_explain_shows_the_request(endpoint, events):
    table = DynamoTable(events, endpoint_url=endpoint, region=REGION, max_rcu=0.1)
    ctx = session()
    ctx.register_table("events", table)
    with pytest.raises(Exception) as refused:
        ctx.sql("SELECT count(*) FROM events").collect()
    message = str(refused.value)
    assert "query refused before reading" in message, message
    assert "DynamoTable(…, max_rcu=…)" in message, message
    assert "SET dynamodb.max_rcu" not in message, message
    # The request each query makes: a Query with the key, a GetItem, a Scan.
    plan = explain("SELECT score FROM events WHERE userId = 'u03' AND eventTime > 1010", events=table)
    assert "operation: Query" in plan and 'userId = "u03"' in plan, plan
    assert "max_rcu" in plan or "ceiling" in plan, plan
    plan = explain("SELECT * FROM events WHERE userId = 'u03' AND eventTime = 1004", events=table)
    assert "operation: GetItem" in plan, plan
    assert "operation: Scan" in explain("SELECT count(*) FROM events", events=table)
    with pytest.raises(ValueError, match="No field named nope"):
        explain("SELECT nope FROM events", events=table)
    with pytest.raises(ValueError, match="not a DynamoTable"):
        explain("SELECT 1", events="Events")


@pytest.mark.parametrize("page", ["README.md", "docs/python.md"])
def test_the_documented_example_runs_as_written(endpoint, capsys, page):
    """The page's Python block, executed as it stands, over the demo tables
    loaded by the project's own loader (`cargo run --example load_demo`)."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/dynamo-connector/target"))
    loader = os.path.join(target, "debug", "examples", "load_demo")
    subprocess.run([loader], check=True, env={**os.environ, "DYNAMODB_ENDPOINT": endpoint})
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", page)).read()
    block = text.split("<!-- python-example -->", 1)[1]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, page, "exec"), {})
    printed = capsys.readouterr().out
    assert "123015" in printed and "12" in printed, printed  # the user's 12 events
    assert "operation: Query" in printed, printed
    if "DynamoCatalog" in code:
        assert "600" in printed, printed  # Inventory's items


def test_a_catalog_of_every_table(endpoint, events):
    catalog = DynamoCatalog(endpoint_url=endpoint, region=REGION)
    assert events in catalog.table_names()
    ctx = session()
    ctx.register_catalog_provider("ddb", catalog)
    assert rows(ctx.sql("SELECT count(*) FROM ddb.public.Events")) == [["600"]]
    with pytest.raises(Exception, match="not found"):
        ctx.sql("SELECT * FROM ddb.public.NoSuchTable").collect()


def test_pandas_and_polars_round_trips(endpoint, events):
    ctx = session()
    ctx.register_table("events", DynamoTable(events, endpoint_url=endpoint, region=REGION))
    sql = "SELECT userId, eventTime, score FROM events WHERE userId = 'u05' ORDER BY eventTime"
    frame = ctx.sql(sql).to_pandas()
    assert list(frame.columns) == ["userId", "eventTime", "score"]
    assert len(frame) == 30 and frame["eventTime"].tolist() == list(range(1000, 1030))
    polars_frame = ctx.sql(sql).to_polars()
    assert polars_frame.columns == ["userId", "eventTime", "score"]
    assert polars_frame["score"].to_list() == [int(s) for s in frame["score"].tolist()]


def test_an_interrupt_stops_the_reads(slow_proxy, events):
    # 1-item pages at 50 ms each: the scan would take ~30 s.
    table = DynamoTable(events, endpoint_url=slow_proxy.endpoint, region=REGION, page_size=1, segments=1)
    ctx = session()
    ctx.register_table("events", table)
    slow_proxy.take()
    # Python's own Ctrl-C handler, even where the runner started with SIGINT
    # ignored (a background job of a script): without it interrupt_main does nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            ctx.sql("SELECT count(*) FROM events").collect()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 10, "the interrupt ended the query"
    time.sleep(0.5)  # a request already sent may still arrive
    sent = sum(slow_proxy.take().values())
    time.sleep(1.0)
    assert sum(slow_proxy.take().values()) == 0, "no request after the interrupt"
    assert 0 < sent < 100, sent


def test_time_formats_make_a_timestamp_whose_ranges_are_key_conditions(proxy, events):
    table = DynamoTable(
        events,
        endpoint_url=proxy.endpoint,
        region=REGION,
        time_formats={"eventTime": "epoch_seconds"},
    )
    assert 'eventTime: Timestamp(s, "UTC") (epoch_seconds)' in table.describe()
    ctx = session()
    ctx.register_table("events", table)
    proxy.take()  # DescribeTable, DescribeTimeToLive and the schema sample
    got = rows(
        ctx.sql(
            "SELECT eventTime FROM events WHERE userId = 'u07' AND eventTime "
            "BETWEEN TIMESTAMP '1970-01-01T00:16:43' AND TIMESTAMP '1970-01-01T00:16:45' "
            "ORDER BY eventTime"
        )
    )
    assert got == [
        ["1970-01-01 00:16:43+00:00"],
        ["1970-01-01 00:16:44+00:00"],
        ["1970-01-01 00:16:45+00:00"],
    ]
    assert proxy.take() == {"Query": 1}


def test_insert_writes_through_datafusion_python_and_update_is_not_forwarded(endpoint, user_event_table):
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    user_event_table(ddb, "Written")
    table = DynamoTable("Written", endpoint_url=endpoint, region=REGION, column_types="score: Decimal128(38, 2)")
    ctx = session()
    ctx.register_table("written", table)
    got = rows(ctx.sql("INSERT INTO written VALUES ('a', 1, 10.25), ('b', 2, NULL)"))
    assert got == [["2"]]
    a = ddb.get_item(TableName="Written", Key={"userId": {"S": "a"}, "eventTime": {"N": "1"}})["Item"]
    assert a["score"] == {"N": "10.25"}, a
    b = ddb.get_item(TableName="Written", Key={"userId": {"S": "b"}, "eventTime": {"N": "2"}})["Item"]
    assert "score" not in b, b
    # An existing key stops an INSERT, naming it.
    with pytest.raises(Exception, match="already exists"):
        ctx.sql("INSERT INTO written VALUES ('a', 1, 1)").collect()
    # DataFusion 55's FFI does not forward UPDATE and DELETE to the table.
    for sql in ("DELETE FROM written WHERE userId = 'a'", "UPDATE written SET score = 1 WHERE userId = 'a'"):
        with pytest.raises(Exception, match="not supported|not implemented"):
            ctx.sql(sql).collect()
    assert len(ddb.scan(TableName="Written")["Items"]) == 2
