"""moto server with DynamoDB operations serialized, for the integration harness.

moto's DynamoDB backend has no locking, and its server is threaded: two concurrent
TransactWriteItems calls can both pass their conditions before either writes, which real
DynamoDB (serializable transactions) never allows. The precompute pipeline's version
assignment relies on exactly that guarantee, so the harness runs moto through this wrapper:
every data-plane operation of the backend holds one process-wide lock. Everything else
(Step Functions, CloudFront, the HTTP server) is moto unchanged.

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the arguments of `python -m moto.server`)
"""

from __future__ import annotations

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()

for _name in ("put_item", "get_item", "query", "scan", "update_item", "delete_item",
              "transact_write_items"):
    _original = getattr(DynamoDBBackend, _name)

    def _serialized(original):
        @functools.wraps(original)
        def call(*args, **kwargs):
            with _LOCK:
                return original(*args, **kwargs)
        return call

    setattr(DynamoDBBackend, _name, _serialized(_original))

if __name__ == "__main__":
    main(sys.argv[1:])
