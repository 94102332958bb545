"""A stand-in for the CloudWatch Logs subscription: the redirect's stdout click lines -> click stream records."""
import gzip
import json
import sys
import threading
import time
import traceback

from aggregator.clicks import MAX_EVENTS_PER_RECORD
from local_stack.periodic import Periodic


def matches_click_filter(line):
    """The local twin of the deployed subscription filter `{ $.type = "click" }`."""
    if not line.startswith("{"):
        return False
    try:
        return json.loads(line).get("type") == "click"
    except ValueError:
        return False


def encode_payload(messages, log_group="/aws/lambda/redirect-local", log_stream="local", first_id=None, timestamp_ms=None):
    """Pack log lines as CloudWatch Logs puts them on a Kinesis stream: gzip of a DATA_MESSAGE.

    timestamp_ms: when the lines were printed (now by default), or one time per line.
    first_id: the first log event's id; by default a new one, as CloudWatch Logs' ids are unique.
    """
    if first_id is None:
        first_id = next_event_ids(len(messages))
    now_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    stamps = now_ms if isinstance(now_ms, list) else [now_ms] * len(messages)
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["clicks"],
        "logEvents": [
            {"id": str(first_id + i).zfill(56), "timestamp": stamp, "message": message}
            for i, (message, stamp) in enumerate(zip(messages, stamps))
        ],
    }
    return gzip.compress(json.dumps(payload).encode())


_last_id = 0
_id_lock = threading.Lock()


def next_event_ids(count):
    """The first of `count` new log event ids: they grow with time and never repeat in this process."""
    global _last_id
    with _id_lock:
        first = max(_last_id + 1, time.time_ns())
        _last_id = first + count - 1
    return first


class LogSubscription(Periodic):
    """Collects the process's stdout click lines and puts them on the click stream in batches, like CloudWatch.

    Install it as sys.stdout: every other line passes through to the real stdout.
    `put(data)` puts one record on the stream; a failed put is kept and tried again.
    """

    def __init__(self, put, interval=1.0, echo=None, log_stream="local"):
        super().__init__(interval, name="log-subscription")
        self._put = put
        self._echo = echo or sys.__stdout__
        self._log_stream = log_stream
        self._lock = threading.Lock()
        self._partial = ""
        self._pending = []
        self._next_id = 0

    # --- file-like side, used as sys.stdout -------------------------------------------------
    def write(self, text):
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            passthrough = []
            now_ms = int(time.time() * 1000)
            for line in lines:
                if matches_click_filter(line):
                    self._pending.append((line, now_ms))  # a log event is stamped when it is printed
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
        first; returns how many lines went. A failed put keeps its lines, and those after it, for the next try."""
        delivered = 0
        while True:
            with self._lock:
                # A copy: lines printed while this record is being put must wait for the next one.
                lines = self._pending[:MAX_EVENTS_PER_RECORD]
                first_id = self._next_id
            if not lines:
                return delivered
            try:
                self._put(
                    encode_payload(
                        [line for line, _ in lines],
                        log_stream=self._log_stream,
                        first_id=first_id,
                        timestamp_ms=[stamp for _, stamp in lines],
                    )
                )
            except Exception:  # noqa: BLE001 - the stream refused: keep the lines, as CloudWatch retries
                self._echo.write(f"click stream put failed; {len(lines)} lines kept\n{traceback.format_exc()}")
                return delivered
            with self._lock:
                del self._pending[: len(lines)]
                self._next_id += len(lines)
            delivered += len(lines)

