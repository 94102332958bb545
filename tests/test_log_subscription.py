"""The local stand-in for the CloudWatch Logs subscription: every click line reaches the stream once."""
import gzip
import json

from local_stack.log_subscription import LogSubscription


class Echo:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def click(n):
    return json.dumps({"type": "click", "id": f"id{n:05d}", "ua": "x"})


def test_lines_printed_while_a_record_is_being_put_are_not_lost():
    records = []
    subscription = None

    def put(data):
        records.append([e["message"] for e in json.loads(gzip.decompress(data))["logEvents"]])
        if len(records) == 1:  # the redirect keeps printing while the first record is on its way
            subscription.write("".join(click(n) + "\n" for n in range(3, 6)))

    subscription = LogSubscription(put, echo=Echo())
    subscription.write("".join(click(n) + "\n" for n in range(3)))
    delivered = subscription.deliver_pending()
    assert [len(r) for r in records] == [3, 3] and delivered == 6
    assert [line for record in records for line in record] == [click(n) for n in range(6)]


def test_a_record_holds_at_most_10000_lines_and_other_lines_pass_through():
    records, echo = [], Echo()
    subscription = LogSubscription(lambda data: records.append(len(json.loads(gzip.decompress(data))["logEvents"])), echo=echo)
    subscription.write("Stopping...\n" + "".join(click(n) + "\n" for n in range(25_001)))
    assert subscription.deliver_pending() == 25_001
    assert records == [10_000, 10_000, 5_001]
    assert echo.text == "Stopping...\n"


def test_a_failed_put_keeps_the_lines_for_the_next_try():
    calls, echo = [], Echo()

    def put(data):
        calls.append(data)
        if len(calls) == 1:
            raise ConnectionError("stream unavailable")

    subscription = LogSubscription(put, echo=echo)
    subscription.write(click(1) + "\n")
    assert subscription.deliver_pending() == 0 and "1 lines kept" in echo.text
    assert subscription.deliver_pending() == 1
    assert calls[0] == calls[1], "the same lines, with the same event ids"
    assert subscription.deliver_pending() == 0
