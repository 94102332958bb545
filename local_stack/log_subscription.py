"""A stand-in for the CloudWatch Logs subscription: the redirect's stdout click lines -> click stream records.

What it reproduces, and the AWS page each behaviour comes from:
- The record: gzip of a DATA_MESSAGE whose log events carry an id, a timestamp and the message.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/ValidateLogEventFlow.html
- Log event ids: 56 decimal digits that grow with time. In that page's example, id
  31953106606966983378809025079804211143289615424298221568 shifted right by 144 bits is its timestamp,
  1432826855000 ms. Here the low bits are the time in ns when the id was made (or one more than the
  last one), so ids are unique within a run and across runs.
- Log stream names: Lambda names one per execution environment, `YYYY/MM/DD/[$LATEST]<32 hex>`, so
  every run here has its own. https://docs.aws.amazon.com/lambda/latest/operatorguide/log-structure.html
- A producer's retry: a put whose answer is lost is stored, put again and stored twice, the same data
  under two sequence numbers. https://docs.aws.amazon.com/streams/latest/dev/kinesis-record-processor-duplicates.html
  (`duplicate_puts`; a put that fails is put again with the very same bytes.)
"""
import datetime
import gzip
import json
import sys
import threading
import time
import traceback
import uuid

from aggregator.clicks import MAX_EVENTS_PER_RECORD
from local_stack.periodic import Periodic

LOG_GROUP = "/aws/lambda/redirect-local"
EVENT_ID_DIGITS = 56
_TIMESTAMP_SHIFT = 144  # the bits below the timestamp in a CloudWatch Logs event id


def matches_click_filter(line):
    """The local twin of the deployed subscription filter `{ $.type = "click" }`."""
    if not line.startswith("{"):
        return False
    try:
        return json.loads(line).get("type") == "click"
    except ValueError:
        return False


def encode_payload(messages, log_group=LOG_GROUP, log_stream="local", first_id=None, timestamp_ms=None,
                   event_ids=None):
    """Pack log lines as CloudWatch Logs puts them on a Kinesis stream: gzip of a DATA_MESSAGE.

    timestamp_ms: when the lines were printed (now by default), or one time per line.
    event_ids: one id per line; or first_id, the first of consecutive ones; by default new ids, as
    CloudWatch Logs' ids are unique.
    """
    now_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    stamps = now_ms if isinstance(now_ms, list) else [now_ms] * len(messages)
    if event_ids is None:
        event_ids = new_event_ids(stamps) if first_id is None else [first_id + i for i in range(len(messages))]
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["clicks"],
        "logEvents": [
            {"id": str(event_id).zfill(EVENT_ID_DIGITS), "timestamp": stamp, "message": message}
            for event_id, message, stamp in zip(event_ids, messages, stamps)
        ],
    }
    # mtime=0: the same events always make the same bytes, as a retried put carries the same data.
    return gzip.compress(json.dumps(payload).encode(), mtime=0)


_last_low = 0
_id_lock = threading.Lock()


def new_event_ids(timestamps_ms):
    """A new log event id for each timestamp: 56 digits, growing with time, never repeated."""
    global _last_low
    with _id_lock:
        first = max(_last_low + 1, time.time_ns())
        _last_low = first + len(timestamps_ms) - 1
    return [(stamp << _TIMESTAMP_SHIFT) | (first + i) for i, stamp in enumerate(timestamps_ms)]


def new_log_stream_name(now=None):
    """A log stream name as Lambda makes one for a new execution environment: `YYYY/MM/DD/[$LATEST]<32 hex>`."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


class LogSubscription(Periodic):
    """Collects the process's stdout click lines and puts them on the click stream in batches, like CloudWatch.

    Install it as sys.stdout: every other line passes through to the real stdout.
    `put(data)` puts one record on the stream; a failed put is kept and put again, the same bytes.
    Each instance is one log stream (a new name by default), its lines get ids when printed.
    """

    def __init__(self, put, interval=1.0, echo=None, log_stream=None, log_group=LOG_GROUP):
        super().__init__(interval, name="log-subscription")
        self._put = put
        self._echo = echo or sys.__stdout__
        self.log_group = log_group
        self.log_stream = log_stream or new_log_stream_name()
        self._lock = threading.Lock()
        self._partial = ""
        self._pending = []  # [(line, timestamp ms, event id)], oldest first
        self._unsent = None  # (line count, data) of a record whose put failed: put again as it was
        self._duplicates = 0

    def duplicate_puts(self, count=1):
        """The next `count` records are stored twice, as when CloudWatch Logs retries a put whose answer
        was lost: the same data, under two sequence numbers."""
        with self._lock:
            self._duplicates += count
        return self

    # --- file-like side, used as sys.stdout -------------------------------------------------
    def write(self, text):
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            passthrough = []
            now_ms = int(time.time() * 1000)
            clicks = [line for line in lines if matches_click_filter(line)]
            ids = iter(new_event_ids([now_ms] * len(clicks)))
            for line in lines:
                if matches_click_filter(line):
                    # A log event is stamped, and gets its id, when it is printed (ingested).
                    self._pending.append((line, now_ms, next(ids)))
                else:
                    passthrough.append(line)
        if passthrough:
            self._echo.write("\n".join(passthrough) + "\n")
        return len(text)

    def flush(self):
        self._echo.flush()

    # --- delivery side ------------------------------------------------------------------------
    def step(self, final=False):
        self.deliver_pending()

    def deliver_pending(self):
        """Put the lines collected so far on the stream, at most MAX_EVENTS_PER_RECORD a record, oldest
        first; returns how many lines went. A failed put keeps its record, and the lines after it, for the next try."""
        delivered = 0
        while True:
            with self._lock:
                count, data = self._unsent or self._next_record()
            if not count:
                return delivered
            try:
                self._put(data)
                if self._take_duplicate():
                    self._put(data)  # the first answer was "lost": CloudWatch puts the same data again
            except Exception:  # noqa: BLE001 - the stream refused: keep the record, as CloudWatch retries
                with self._lock:
                    self._unsent = (count, data)
                self._echo.write(f"click stream put failed; {count} lines kept\n{traceback.format_exc()}")
                return delivered
            with self._lock:
                self._unsent = None
                del self._pending[:count]
            delivered += count

    def _take_duplicate(self):
        with self._lock:
            duplicate, self._duplicates = self._duplicates > 0, max(self._duplicates - 1, 0)
        return duplicate

    def _next_record(self):
        """The next record of pending lines (a copy: lines printed while it is put wait for the next)."""
        lines = self._pending[:MAX_EVENTS_PER_RECORD]
        if not lines:
            return 0, b""
        return len(lines), encode_payload(
            [line for line, _, _ in lines],
            log_group=self.log_group,
            log_stream=self.log_stream,
            timestamp_ms=[stamp for _, stamp, _ in lines],
            event_ids=[event_id for _, _, event_id in lines],
        )
