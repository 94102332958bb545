"""The aggregator handler, freshly imported: it builds its DynamoDB and Kinesis clients at import time."""
import importlib
import sys

from tests.support.pipeline import STREAM


def fresh_aggregator(monkeypatch, table_name, stream=STREAM):
    """aggregator.handler imported again with TABLE_NAME and CLICK_STREAM_NAME set (call it inside moto)."""
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("CLICK_STREAM_NAME", stream)
    return reload_aggregator()


def reload_aggregator():
    """aggregator.handler imported again under the current environment (new clients, new settings), as a new
    container: with nothing remembered of items an earlier test's table held."""
    from aggregator import writes

    writes._full_items.clear()
    writes._sketches.clear()
    module = sys.modules.get("aggregator.handler")
    return importlib.reload(module) if module else importlib.import_module("aggregator.handler")
