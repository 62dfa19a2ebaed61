"""DynamoDB tables for DataFusion in Python.

``DynamoTable`` is one table and ``DynamoCatalog`` every table of an
account and region; datafusion-python takes both through DataFusion's FFI::

    from datafusion import SessionContext
    from dynamo_datafusion import DynamoTable

    ctx = SessionContext()
    ctx.register_table("events", DynamoTable("UserEngagement", region="us-east-1"))
    ctx.sql("SELECT count(*) FROM events WHERE userId = '123015'").to_pandas()

Filters, projections and limits become DynamoDB requests (GetItem,
BatchGetItem, Query on the table or an index, parallel Scan) in the Rust
provider; the AWS SDK runs on the module's own runtime.
"""

from ._internal import DynamoCatalog, DynamoTable, __version__, explain

__all__ = ["DynamoCatalog", "DynamoTable", "__version__", "explain"]
