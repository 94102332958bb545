"""The click pipeline's AWS pieces for the local stack: a Kinesis stream and the on-failure queue.

Both are served by moto in this process (on loopback), so the aggregator talks to them with
the same boto3 calls as on AWS; the stream's shard count is the template's default.
"""
import time
from dataclasses import dataclass

import boto3

from local_stack import moto_server
from local_stack.dynamodb import LOCAL_ACCESS_KEY, REGION, free_port
from local_stack.template import load_template

# Named per run, so a restarted `make run` starts on a stream of its own. A stream deleted and created
# again under one name, as a re-created stack's is, is what ClickStream.recreate() reproduces.
STREAM_PREFIX = "clicks-local-"
QUEUE_NAME = "clicks-failed-local"


@dataclass
class ClickStream:
    """A running stream and queue, and how to reach and stop them."""

    endpoint: str
    stream_name: str
    queue_url: str
    kinesis: object
    sqs: object
    stop: object

    def put(self, data):
        """Put one record on the stream, as the CloudWatch Logs subscription does."""
        return self.kinesis.put_record(StreamName=self.stream_name, Data=data, PartitionKey="clicks")

    def summary(self):
        """The stream's DescribeStreamSummary: its ARN, creation time, shard count, retention."""
        return self.kinesis.describe_stream_summary(StreamName=self.stream_name)["StreamDescriptionSummary"]

    def recreate(self):
        """Delete the stream and create it again under the same name and shard count, as a deleted and
        re-created stack does; the new stream's summary. An EventSourceMapping follows it with follow().

        moto restarts the sequence numbers at 1, and gives the new stream its own StreamCreationTimestamp,
        which reaches the client in milliseconds: the new stream is created only once the clock is past
        the old one's millisecond, so that two lives of one name never share a creation time.
        """
        return recreate_stream(self.kinesis, self.stream_name)


def shard_count(template=None):
    """The stream's shard count: the template's default for ClickStreamShards."""
    template = template or load_template()
    return int(template["Parameters"]["ClickStreamShards"]["Default"])


def clients(endpoint):
    """Kinesis and SQS clients on a local endpoint."""
    settings = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": LOCAL_ACCESS_KEY,
        "aws_secret_access_key": LOCAL_ACCESS_KEY,
    }
    return boto3.client("kinesis", **settings), boto3.client("sqs", **settings)


def recreate_stream(kinesis, name):
    """Delete stream `name` and create it again with as many shards; the new stream's summary."""
    old = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    waiter = {"Delay": 0.1, "MaxAttempts": 50}
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig=waiter)
    created = old["StreamCreationTimestamp"].timestamp()
    time.sleep(max(0.0, created + 0.002 - time.time()))
    kinesis.create_stream(StreamName=name, ShardCount=old["OpenShardCount"])
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=waiter)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def start():
    """Serve Kinesis and SQS from moto on loopback and create the stream and the queue."""
    endpoint, stop = moto_server.serve(free_port())
    kinesis, sqs = clients(endpoint)
    name = f"{STREAM_PREFIX}{time.time_ns() // 1_000_000}"
    kinesis.create_stream(StreamName=name, ShardCount=shard_count())
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    return ClickStream(endpoint, name, queue_url, kinesis, sqs, stop)
