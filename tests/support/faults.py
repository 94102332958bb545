"""Fault injection on botocore clients: one call at a time (before it is sent, or after it landed), or a whole outage.

`Faults` works at the call layer, after botocore's own retries: the caller sees the fault.
- before: the call never reaches the backend, like a throttle or a refused connection;
- lost: the call reaches the backend and is applied, then the caller gets a read timeout (or
  any fault) instead of the answer, as when a connection drops after DynamoDB wrote the item.

`Outage` works at the HTTP layer (`before-send`): every send fails, botocore parses or raises
the fault and retries it as it would a real one, and its back-off sleeps are recorded, not slept.
With `lost`, each send is applied before its answer is lost, and botocore's retry sends it again.

No real endpoint is ever called.
"""
import json
import threading

import botocore.endpoint
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

ENDPOINT = "https://dynamodb.us-east-1.amazonaws.com"
THROTTLED = "ProvisionedThroughputExceededException"
# Each fault kind: how the HTTP layer shows it (a status and __type, or the exception urllib3's
# failure becomes), and so what the caller sees once botocore gives up.
FAULTS = {
    "throttled": (400, THROTTLED),
    "request-limit": (400, "RequestLimitExceeded"),
    "internal-error": (500, "InternalServerError"),
    "unavailable": (503, "ServiceUnavailable"),
    "read-timeout": ReadTimeoutError,
    "connection-refused": EndpointConnectionError,
}


def fault_exception(fault, operation="GetItem", endpoint=ENDPOINT):
    """The exception a botocore call raises once its retries gave up on this fault.

    `fault` is a kind of FAULTS, any other error code (a ClientError), or a botocore exception class.
    """
    fault = FAULTS.get(fault, fault) if isinstance(fault, str) else fault
    if isinstance(fault, tuple):
        fault = fault[1]
    if isinstance(fault, str):
        return ClientError({"Error": {"Code": fault, "Message": "injected"}}, operation)
    return fault(endpoint_url=endpoint, error="injected")


class Faults:
    """Counts every call of the given botocore clients and fails the chosen ones.

    Chosen by position (`fail_at`: indices into `calls`), by content (`fail_when(operation,
    request)`: the request's JSON body; it may also raise an exception of its own), or as the next
    calls of an operation (`fail_next`). A chosen call fails before it is sent, or, with `lost` set,
    is applied and then answers `fault` instead.
    """

    def __init__(self, *clients):
        self.calls = []  # operation names, in the order the calls were made
        self.bodies = []  # and their JSON bodies, in the same order
        self.lost_calls = []  # indices of the calls that were applied and answered with a fault
        self.fail_at = set()
        self.fail_when = None
        self.next_failures = {}  # operation name -> how many of its next calls fail
        self.fault = "throttled"
        self.lost = False
        self._clients = clients
        self._lock = threading.Lock()  # the aggregator writes items from several threads
        for client in clients:
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("after-call", self._after)

    def lose_responses(self, fault=ReadTimeoutError):
        """From now on a chosen call is applied, and its caller sees `fault` instead of the answer."""
        self.lost, self.fault = True, fault
        return self

    def fail_next(self, operation, count=1):
        """Fail the next `count` calls of `operation` (e.g. "PutRecord"). With lose_responses(), each is
        applied and its answer lost, so a producer that retries stores its record twice."""
        with self._lock:
            self.next_failures[operation] = self.next_failures.get(operation, 0) + count
        return self

    def clear(self):
        """Fail nothing more (the count of calls goes on)."""
        self.fail_at, self.fail_when, self.next_failures = set(), None, {}

    def remove(self):
        """Take the hooks off the clients again."""
        for client in self._clients:
            client.meta.events.unregister("before-call", self._before)
            client.meta.events.unregister("after-call", self._after)

    def _before(self, model, params, context, **_):
        with self._lock:
            index = len(self.calls)
            self.calls.append(model.name)
            self.bodies.append(_body(params))
            chosen_next = self.next_failures.get(model.name, 0) > 0
            if chosen_next:
                self.next_failures[model.name] -= 1
        if not chosen_next and index not in self.fail_at and not (
            self.fail_when and self.fail_when(model.name, _body(params))
        ):
            return
        if not self.lost:
            raise fault_exception(self.fault, model.name)
        context["lose_response"] = index  # the same dict reaches after-call once the backend answered

    def _after(self, model, context, **_):
        index = context.pop("lose_response", None)
        if index is None:
            return
        with self._lock:
            self.lost_calls.append(index)
        raise fault_exception(self.fault, model.name)


def _body(params):
    """The request's JSON body (already serialised at before-call), or {}."""
    body = params.get("body") or b"{}"
    try:
        return json.loads(body) if isinstance(body, (bytes, str)) else {}
    except ValueError:
        return {}


class Outage:
    """Makes every HTTP send of the given botocore clients fail with one kind of fault while `kind` is set.

    `operations` limits it to those operations (all by default), `first_sends` to the first send of
    each call (botocore's own retries then go through). With `lost`, each failed send is applied
    first and only its answer is lost (`kind` must then be an exception, such as "read-timeout"):
    botocore sends the same request again, as it does after a real timeout. Counts the sends it
    failed, and records botocore's back-off delays instead of sleeping them (until `end`).
    """

    def __init__(self, monkeypatch, *clients, operations=None, lost=False):
        from moto.core.models import botocore_stubber

        self.kind = None
        self.clients = clients
        self.operations = operations
        self.first_sends = False
        self.lost = lost
        self.failed_sends = 0
        self.sleeps = []
        self._lock = threading.Lock()
        # moto answers every request in a before-send handler of its own, and botocore calls every
        # before-send handler even once one has answered: this hook takes moto's place, so that a
        # failed send never reaches moto, and a lost one reaches it before its answer is dropped.
        self._moto = botocore_stubber
        fake_time = type("FakeTime", (), {"sleep": staticmethod(self.sleeps.append)})
        monkeypatch.setattr(botocore.endpoint, "time", fake_time)
        for client in clients:
            client.meta.events.unregister("before-send", self._moto)
            client.meta.events.register("before-send", self._send)

    def end(self):
        """Give the clients back to moto: a handler's client lives as long as its module, across tests."""
        self.kind = None
        for client in self.clients:
            client.meta.events.unregister("before-send", self._send)
            client.meta.events.register("before-send", self._moto)

    def _send(self, request, event_name, **kwargs):
        if not self._fails(request, event_name):
            return self._moto(event_name=event_name, request=request, **kwargs)
        fault = FAULTS[self.kind]
        if self.lost:
            if isinstance(fault, tuple):
                raise ValueError(f"a lost answer is an exception, not the HTTP answer of {self.kind}")
            self._moto(event_name=event_name, request=request, **kwargs)  # applied; its answer is dropped
        if not isinstance(fault, tuple):
            raise fault(endpoint_url=request.url, error="injected")
        status, code = fault
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()
        headers = {"x-amzn-requestid": "injected", "content-type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, status, headers, _Raw(body))

    def _fails(self, request, event_name):
        """Whether this send is one to fail (and count it)."""
        if self.kind is None or (self.operations and event_name.rpartition(".")[2] not in self.operations):
            return False
        if self.first_sends and request.context.get("retries", {}).get("attempt", 1) > 1:
            return False
        with self._lock:  # the aggregator sends from several threads
            self.failed_sends += 1
        return True


class _Raw:
    """The raw body of an injected HTTP answer."""

    def __init__(self, body):
        self._body = body

    def stream(self, **_):
        yield self._body
