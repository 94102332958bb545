"""The click pipeline inside moto, for tests: a Kinesis stream and the event source mapping stand-in."""
import boto3

from local_stack.event_source import EventSourceMapping
from local_stack.log_subscription import encode_payload

STREAM_NAME = "clicks-test"


class Pipeline:
    """Click lines -> one stream record per `send` -> ordered batches -> the real aggregator. Use inside mock_aws."""

    def __init__(self, handler, shards=1, on_failure=None):
        self.kinesis = boto3.client("kinesis")
        self.kinesis.create_stream(StreamName=STREAM_NAME, ShardCount=shards)
        self.failed = []  # on-failure records of batches the mapping gave up on
        self.mapping = EventSourceMapping(
            self.kinesis, STREAM_NAME, handler, on_failure or self.failed.append, window=0, max_retries=2
        ).start_at()

    def put(self, lines, timestamps_ms=None):
        """Put one record of click lines on the stream, as CloudWatch Logs does."""
        data = encode_payload(lines, timestamp_ms=timestamps_ms)
        return self.kinesis.put_record(StreamName=STREAM_NAME, Data=data, PartitionKey="clicks")["SequenceNumber"]

    def send(self, lines, timestamps_ms=None):
        """Put the lines on the stream and deliver everything waiting."""
        self.put(lines, timestamps_ms)
        self.mapping.poll(flush=True)
