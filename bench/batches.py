"""Stream batches built directly, as the event source mapping hands them to the aggregator.

For benchmarks that drive the real aggregator with batches of their own making: any shard of a
stream, any number of records and clicks, with no redirect, stream or mapping in front.
- Click lines are the real redirect's: one line per kind of visitor, printed by a fresh copy of
  redirect_fn/handler.py, with only the link id changed.
- Records are packed as bench/simulation.py packs them (modelled): one log stream's lines per
  record, `clicks_per_record` of them, gzip of a CloudWatch Logs DATA_MESSAGE.
- Sequence numbers have the 56 digits Kinesis gives them, so marks are their real size.
"""

import contextlib
import io
import itertools
import json
import time

from bench.backends import client_for
from bench.context import put_all
from bench.fixtures import create_our_table, our_item
from bench.handlers import load_ours
from bench.simulation import LOG_GROUP, RECORD_SECONDS, SIM_START, visitor_event
from local_stack.event_source import kinesis_event
from local_stack.log_subscription import encode_payload

# A real Kinesis sequence number (56 digits); each shard counts up from its own offset.
SEQUENCE_BASE = 49590338271490256608559692538361571095921575989136588898
SHARD_SPAN = 10**40
_SAMPLE_LINK = "sample1"


def shard_id(number):
    """Kinesis's name for shard `number`."""
    return f"shardId-{number:012d}"


def clicks_per_record(sizes):
    """Click lines per record in the modelled packing: a container's lines of RECORD_SECONDS at the spread rate."""
    spread = sizes["spread"]
    return max(1, round(spread["rate"] / spread["containers"] * RECORD_SECONDS))


def line_template(ctx, table, visitor=1):
    """The click line the real redirect prints for one kind of visitor, as a dict."""
    stub = client_for(ctx.stub.endpoint)
    create_our_table(stub, table)
    put_all(stub, table, [our_item(_SAMPLE_LINK, f"https://example.com/{_SAMPLE_LINK}")])
    redirect = load_ours(ctx.stub.endpoint, table)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = redirect.lambda_handler(visitor_event(_SAMPLE_LINK, visitor), None)["statusCode"]
    lines = [line for line in output.getvalue().splitlines() if line.startswith("{")]
    if status != 302 or len(lines) != 1:
        raise RuntimeError(f"the redirect answered {status} and printed {len(lines)} click line(s), not one")
    return json.loads(lines[0])


def click_line(template, short_id):
    """The template's click line for another link, printed as the redirect prints it."""
    return json.dumps({**template, "id": short_id}, separators=(",", ":"))


class BatchMaker:
    """Kinesis events of one stream: each call a new batch of a shard, later in that shard than the last."""

    def __init__(self, stream_arn, clicks_per_record):
        self.stream_arn = stream_arn
        self.clicks_per_record = clicks_per_record
        self._positions = {}  # shard number -> records given so far
        self._next_event_id = 1  # log event ids are unique in a log group
        self._log_streams = itertools.count()

    def event(self, shard, lines):
        """The mapping's event for `lines`, packed into records, on shard number `shard`."""
        records = []
        for first in range(0, len(lines), self.clicks_per_record):
            chunk = lines[first : first + self.clicks_per_record]
            data = encode_payload(
                chunk, log_group=LOG_GROUP, log_stream=f"container-{next(self._log_streams)}",
                first_id=self._next_event_id, timestamp_ms=int(SIM_START * 1000),
            )
            self._next_event_id += len(chunk)
            position = self._positions.get(shard, 0) + 1
            self._positions[shard] = position
            records.append((str(SEQUENCE_BASE + shard * SHARD_SPAN + position), data, time.time()))
        return kinesis_event(records, self.stream_arn, shard_id(shard))
