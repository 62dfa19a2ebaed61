"""What users do today to bulk-load a file into DynamoDB: read it, then
boto3's batch_writer (BatchWriteItem of 25, unprocessed items resent).
The same file and table as the REPLACE INTO side of benches/bulk_load.rs.

Prints one JSON line: seconds from reading the file to the last write, and
the items written.
"""

import argparse
import json
import time

import boto3
import pyarrow.parquet as pq


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--parquet", required=True)
    args = parser.parse_args()
    if not args.endpoint_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("refusing a non-loopback endpoint")
    table = boto3.resource("dynamodb", endpoint_url=args.endpoint_url).Table(args.table)
    start = time.perf_counter()
    rows = pq.read_table(args.parquet).to_pylist()
    written = 0
    with table.batch_writer() as batch:
        for row in rows:
            # NULL is no attribute, as the SQL side writes it.
            batch.put_item(Item={k: v for k, v in row.items() if v is not None})
            written += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "items": written}))


if __name__ == "__main__":
    main()
