"""What users do today: scan a DynamoDB table with boto3, load it into pandas,
aggregate. The same query as the dynamo-sql side of benches/vs_python.rs:

    SELECT country, count(*), sum(amount) FROM t GROUP BY country

Prints one JSON line: the median wall time over --runs and the result rows.
"""

import argparse
import json
import statistics
import time
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer
import pandas as pd


def run_once(client, table):
    # The usual code: the paginator, every attribute, then a DataFrame.
    deserializer = TypeDeserializer()
    rows = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            rows.append({k: deserializer.deserialize(v) for k, v in item.items()})
    frame = pd.DataFrame(rows)
    frame["amount"] = frame["amount"].map(Decimal)
    grouped = frame.groupby("country").agg(n=("amount", "size"), total=("amount", "sum"))
    return {country: [int(r.n), str(r.total)] for country, r in grouped.iterrows()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.endpoint_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("refusing a non-loopback endpoint")
    client = boto3.client(
        "dynamodb",
        endpoint_url=args.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="local-secret",
    )
    times = []
    result = None
    for _ in range(args.runs):
        start = time.perf_counter()
        result = run_once(client, args.table)
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_s": statistics.median(times), "result": result}))


if __name__ == "__main__":
    main()
