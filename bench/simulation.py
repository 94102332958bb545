"""The click pipeline in simulated time, on the real code from redirect to table.

    warm redirect containers ─ stdout ─► one log record per container (log stream) per second
      ─► the click stream (local_stack.click_stream: moto's Kinesis on loopback)
      ─► tests.support.pipeline.Pipeline: the event source mapping stand-in, one poll per batching window
      ─► the real aggregator ─► DynamoDB Local (units metered per key by bench/capacity.py)

- Every redirect is a real `lambda_handler` call of a fresh copy of redirect_fn/handler.py.
  A container is that module with its own cache dict and day's salt swapped in (the module's
  `_cache` and `_salt`), and the module's `time` is a simulated clock, so caches expire on
  simulated time. The salt is read from the salts' own table, seeded for the simulated day.
- Each container's stdout is its log stream. At the end of every simulated second its click
  lines become one record, packed by local_stack.log_subscription.encode_payload (gzip of a
  CloudWatch Logs DATA_MESSAGE) and put on the stream. That packing is modelled: CloudWatch
  Logs puts one log stream's events in a record (at most 10,000), but does not document how
  often it sends one. It matters since the aggregator claims each record (one write), so the
  claims per click are this model's records per click (RECORD_SECONDS).
- At the end of every batching window the mapping polls the stream and invokes the real
  aggregator (a fresh copy of aggregator/handler.py with its own DynamoDB and Kinesis clients)
  with everything that arrived, in batches of at most BatchSize records, retried in order and
  sent to the on-failure list after MaximumRetryAttempts, as deployed.
"""

import math
import sys
import threading
import time
from collections import Counter

from bench.backends import client_for
from bench.capacity import CapacityMeter
from bench.fixtures import seed_salts
from bench.handlers import RequestCounter, load_aggregator, load_ours
from local_stack.http_api import to_event
from local_stack.log_subscription import encode_payload
from local_stack.template import salts_table_name
from tests.support.pipeline import Pipeline, mapping_settings

# Noon UTC, so a few minutes of simulated time stay within one day (one stats item per link).
SIM_START = 1_795_780_800.0
# Modelled: CloudWatch Logs sends each log stream's new events as one record this often.
RECORD_SECONDS = 1
PUT_UNIT_BYTES = 25 * 1024  # Kinesis bills PUT payload in 25 KB units, rounded up per record
PUT_RECORDS_MAX = 500  # records per PutRecords call
LOG_GROUP = "/aws/lambda/redirect"
# A few kinds of visitors, so the per-day stats have referrers and devices to count. No
# country: the deployed HTTP API has no trusted front, so the redirect drops that header.
VISITORS = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "https://news.example/"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "https://mail.example/"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15", None),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", "https://social.example/"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", None),
]


def visitor_event(short_id, visitor, referrer=None):
    """A payload 2.0 GET for a short link from one kind of visitor (or an explicit referrer)."""
    user_agent, default_referrer = VISITORS[visitor % len(VISITORS)]
    headers = [("Host", "sho.rt"), ("User-Agent", user_agent)]
    if referrer or default_referrer:
        headers.append(("Referer", referrer or default_referrer))
    return to_event("GET", f"/{short_id}", headers)


class SimClock:
    """Stands in for the `time` module inside one handler module: time() is simulated, the rest is real."""

    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


class _Lines:
    """A container's stdout: the click lines it printed since the last record."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.extend(line for line in text.split("\n") if line)
        return len(text)

    def flush(self):
        pass


class SimulatedPipeline(Pipeline):
    """Redirect containers feeding the click pipeline, driven second by second in simulated time."""

    def __init__(self, ctx, redirect_endpoint, redirect_table, table_endpoint, table, containers, index_keys=None):
        self.settings = mapping_settings()
        self.window = self.settings["window"]
        # The redirect reads the simulated day's salt from the salts' own table, as deployed: clicks carry "v".
        salt_table = salts_table_name(redirect_table)
        seed_salts(client_for(redirect_endpoint), salt_table, [time.strftime("%Y-%m-%d", time.gmtime(SIM_START))])
        self.redirect = load_ours(redirect_endpoint, redirect_table, salt_table)
        self.clock = SimClock(SIM_START)
        self.redirect.time = self.clock  # only this module copy sees simulated time
        self.reads = RequestCounter(self.redirect._client)
        stream = ctx.click_stream()
        stream_name = ctx.new_stream()
        aggregator = load_aggregator(table_endpoint, table, stream.endpoint, stream_name)
        self.second = 0
        self.meter = CapacityMeter(aggregator._dynamodb, index_keys=index_keys, clock=lambda: self.second)
        # The aggregator's own Kinesis calls: in steady state a batch makes none (the stream's life
        # is asked once per container and minute; nothing reads records back).
        self.stream_calls = Counter()
        aggregator._kinesis.meta.events.register("before-call.kinesis", self._count_stream_call)
        self.redirect_cpu = self.aggregator_cpu = 0.0
        self._cpu_lock = threading.Lock()
        super().__init__(
            aggregator, stream.kinesis, stream_name, shards=None,
            batch_size=self.settings["batch_size"], window=self.window, max_retries=self.settings["max_retries"],
        )
        self.dlq = self.failed
        self.batches = self.results
        self.containers = containers
        self.caches = [{} for _ in range(containers)]
        self.salts = [self.redirect._Salt() for _ in range(containers)]  # each container reads its own day's salt
        self.sinks = [_Lines() for _ in range(containers)]
        self.next_event_id = [0] * containers
        self.statuses = Counter()
        self.redirects = 0
        self.reads_per_second = []
        self.records = self.record_bytes = self.put_units = self.lines = self.line_bytes = 0
        self.records_per_second = []
        self._wrap_item_writes()

    def _count_stream_call(self, model, **_):
        self.stream_calls[model.name] += 1

    def _wrap_item_writes(self):
        """Add the CPU time of the aggregator's write threads (their thread_time) to its own."""
        real = self.aggregator.apply_item

        def timed(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return real(*args, **kwargs)
            finally:
                with self._cpu_lock:
                    self.aggregator_cpu += time.thread_time() - t0

        self.aggregator.apply_item = timed  # the handler looks it up when it submits each item

    def _invoke(self, event, context):
        t0 = time.thread_time()
        try:
            return super()._invoke(event, context)
        finally:
            with self._cpu_lock:
                self.aggregator_cpu += time.thread_time() - t0

    def run(self, seconds, rate, pick):
        """`seconds` simulated seconds at `rate` redirects a second; pick(second, i) -> (container, event)."""
        handler = self.redirect.lambda_handler
        start = self.clock.now
        saved = sys.stdout
        for second in range(seconds):
            reads_before = self.reads.reads
            cpu0 = time.thread_time()
            try:
                for i in range(rate):
                    self.clock.now = start + second + i / rate
                    container, event = pick(second, i)
                    self.redirect._cache = self.caches[container]
                    self.redirect._salt = self.salts[container]
                    sys.stdout = self.sinks[container]
                    self.statuses[handler(event, None)["statusCode"]] += 1
            finally:
                sys.stdout = saved
            self.redirect_cpu += time.thread_time() - cpu0
            self.redirects += rate
            self.reads_per_second.append(self.reads.reads - reads_before)
            self.clock.now = start + second + 1
            if (second + 1) % RECORD_SECONDS == 0 or second == seconds - 1:
                self._publish()
            if (second + 1) % self.window == 0 or second == seconds - 1:
                self.second = round(self.clock.now - SIM_START)
                self.mapping.poll(flush=True)
        return self

    def _publish(self):
        """Each container's lines of the last second as one record of its log stream, put on the stream."""
        records = []
        for container, sink in enumerate(self.sinks):
            if not sink.lines:
                continue
            data = encode_payload(
                sink.lines,
                log_group=LOG_GROUP,
                log_stream=f"container-{container}",
                first_id=self.next_event_id[container],
                timestamp_ms=int(self.clock.now * 1000),
            )
            self.next_event_id[container] += len(sink.lines)
            self.lines += len(sink.lines)
            self.line_bytes += sum(len(line.encode()) + 1 for line in sink.lines)
            sink.lines = []
            self.record_bytes += len(data)
            self.put_units += math.ceil(len(data) / PUT_UNIT_BYTES)
            records.append({"Data": data, "PartitionKey": f"container-{container}"})
        self.records += len(records)
        self.records_per_second.append(len(records))
        for first in range(0, len(records), PUT_RECORDS_MAX):
            response = self.kinesis.put_records(StreamName=self.stream, Records=records[first : first + PUT_RECORDS_MAX])
            if response.get("FailedRecordCount"):
                raise RuntimeError(f"the stream refused {response['FailedRecordCount']} records")

    def summary(self):
        """What was counted, as plain numbers."""
        return {
            "redirects": self.redirects,
            "statuses": dict(sorted(self.statuses.items())),
            "reads": self.reads.reads,
            "read_units": self.reads.read_units,
            "reads_per_second": self.reads_per_second,
            "redirect_cpu": self.redirect_cpu,
            "lines": self.lines,
            "line_bytes": self.line_bytes,
            "records": self.records,
            "records_per_second": self.records_per_second,
            "record_bytes": self.record_bytes,
            "put_units": self.put_units,
            "invocations": self.mapping.invocations,
            "batches": len(self.batches),
            "dlq": len(self.dlq),
            "errors": self.errors,
            "aggregator_cpu": self.aggregator_cpu,
            "aggregator_ops": dict(self.meter.ops),
            "clicks_applied": sum(b.get("clicks", 0) for b in self.batches),
            "items_per_batch": [b.get("items", 0) for b in self.batches],
            "failed_conditions": self.meter.failed_conditions,
            "write_units": self.meter.write_units,
            # PutItem is the aggregator's claim of a stream record, UpdateItem its item writes.
            "write_units_by_op": dict(self.meter.write_units_by_op),
            "rollup_units": self.meter.rollup_units,  # included in UpdateItem's
            "stream_calls": dict(self.stream_calls),
            "read_units_aggregator": self.meter.read_units,
            "units_estimated": self.meter.estimated,
            "window": self.window,
            "settings": self.settings,
            "containers": self.containers,
            "cache_seconds": self.redirect.LINK_CACHE_SECONDS,
        }
