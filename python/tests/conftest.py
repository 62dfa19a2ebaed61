"""Fixtures: DynamoDB Local (DYNAMODB_ENDPOINT, started by scripts/test.sh),
a table of our own in a database of our own, a request-counting proxy."""

import http.client
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import boto3
import pytest

REGION = "us-east-1"
# DynamoDB Local keeps one database per access key id: a fresh one per run.
ACCESS_KEY = "pytest" + uuid.uuid4().hex[:12]
SECRET_KEY = "pytest-secret"


@pytest.fixture(scope="session")
def endpoint():
    url = os.environ.get("DYNAMODB_ENDPOINT")
    if not url:
        pytest.fail("DYNAMODB_ENDPOINT is not set: run scripts/test.sh")
    host = urlparse(url).hostname
    assert host in ("127.0.0.1", "localhost", "::1"), f"not a loopback endpoint: {url}"
    return url


@pytest.fixture(scope="session", autouse=True)
def credentials():
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )


def create_user_event_table(ddb, name):
    """A new table keyed by userId (S) and eventTime (N)."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "userId", "KeyType": "HASH"},
            {"AttributeName": "eventTime", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "userId", "AttributeType": "S"},
            {"AttributeName": "eventTime", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name)


@pytest.fixture
def user_event_table():
    """Makes a new table keyed by userId (S) and eventTime (N): `user_event_table(ddb, name)`."""
    return create_user_event_table


@pytest.fixture(scope="session")
def events(endpoint):
    """Table `Events`: 20 users × 30 events, keys userId (S) / eventTime (N)."""
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    create_user_event_table(ddb, "Events")
    for u in range(20):
        for e in range(30):
            ddb.put_item(
                TableName="Events",
                Item={
                    "userId": {"S": f"u{u:02}"},
                    "eventTime": {"N": str(1000 + e)},
                    "score": {"N": str((u * 7 + e) % 100)},
                    "kind": {"S": ["click", "view", "buy"][e % 3]},
                },
            )
    return "Events"


class CountingProxy:
    """Forwards every request to DynamoDB, counting them by operation."""

    def __init__(self, upstream, delay=0.0):
        self.upstream = urlparse(upstream)
        self.delay = delay
        self.counts = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                op = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                with proxy.lock:
                    proxy.counts[op] = proxy.counts.get(op, 0) + 1
                time.sleep(proxy.delay)
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("POST", self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self):
        """The counts so far, starting again from zero."""
        with self.lock:
            counts, self.counts = self.counts, {}
        return counts

    def close(self):
        self.server.shutdown()


@pytest.fixture
def proxy(endpoint):
    p = CountingProxy(endpoint)
    yield p
    p.close()


@pytest.fixture
def slow_proxy(endpoint):
    """A proxy that holds every request 50 ms."""
    p = CountingProxy(endpoint, delay=0.05)
    yield p
    p.close()
