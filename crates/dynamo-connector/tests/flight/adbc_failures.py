"""Statements through the ADBC Flight SQL driver, one connection each:
argv = URI, JSON list of [token, sql]; prints a JSON list of
{"status": gRPC code name or "no error", "message": ...}."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adbc_client import failure  # noqa: E402


def main():
    uri, calls = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps([failure(uri, token, sql) for token, sql in calls]))


if __name__ == "__main__":
    main()
