"""A stand-in for a CloudWatch Logs subscription: stdout lines -> gzip+base64 `awslogs` batches -> aggregator."""
import base64
import gzip
import json
import sys
import threading
import traceback
import time


def matches_click_filter(line):
    """The local twin of the deployed subscription filter `{ $.type = "click" }`."""
    if not line.startswith("{"):
        return False
    try:
        return json.loads(line).get("type") == "click"
    except ValueError:
        return False


def encode_batch(messages, log_group="/aws/lambda/redirect-local", log_stream="local", first_id=0):
    """Pack log lines exactly as CloudWatch Logs delivers them to a subscribed Lambda."""
    now_ms = int(time.time() * 1000)
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["clicks"],
        "logEvents": [
            {"id": str(first_id + i).zfill(56), "timestamp": now_ms, "message": message}
            for i, message in enumerate(messages)
        ],
    }
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


class LogSubscription:
    """Collects the process's stdout click lines and delivers them in batches to a Lambda handler, like CloudWatch.

    Install it as sys.stdout: every other line passes through to the real stdout.
    A batch the aggregator rejects is kept and delivered again, as Lambda's retries would.
    """

    def __init__(self, handler, interval=1.0, echo=None, log_stream="local"):
        self._handler = handler
        self._interval = interval
        self._echo = echo or sys.__stdout__
        self._log_stream = log_stream
        self._lock = threading.Lock()
        self._partial = ""
        self._pending = []
        self._batches = []
        self._next_id = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-subscription")
        self.delivered = 0

    # --- file-like side, used as sys.stdout -------------------------------------------------
    def write(self, text):
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            passthrough = []
            for line in lines:
                if matches_click_filter(line):
                    self._pending.append(line)
                else:
                    passthrough.append(line)
        if passthrough:
            self._echo.write("\n".join(passthrough) + "\n")
        return len(text)

    def flush(self):
        self._echo.flush()

    # --- delivery side ------------------------------------------------------------------------
    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Deliver what is left, then stop."""
        self._stopped.set()
        self._thread.join(timeout=10)
        self.deliver_pending()

    def deliver_pending(self):
        """Deliver the lines collected so far, oldest batch first; a failed batch is kept as it was.

        A kept batch is retried with the same log event ids, so the aggregator's
        redelivery guard sees it as the same delivery, as it would on AWS.
        """
        with self._lock:
            lines, self._pending = self._pending, []
            first_id, self._next_id = self._next_id, self._next_id + len(lines)
        if lines:
            self._batches.append((encode_batch(lines, log_stream=self._log_stream, first_id=first_id), len(lines)))
        delivered = 0
        while self._batches:
            event, count = self._batches[0]
            try:
                self._handler(event, None)  # invoked as Lambda would: (event, context)
            except Exception:  # noqa: BLE001 - any aggregator failure means "retry later", as on AWS
                self._echo.write(f"aggregator failed; {count} click lines kept for retry\n{traceback.format_exc()}")
                self._echo.flush()
                break
            self._batches.pop(0)
            delivered += count
        self.delivered += delivered
        return delivered

    def _run(self):
        while not self._stopped.wait(self._interval):
            self.deliver_pending()
