"""The one DynamoDB table: the client, marshalling, and error codes mapped to domain errors."""
import boto3
from botocore.exceptions import BotoCoreError, ClientError

from webapp.exceptions import StoreUnavailable

_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
}
# Cancellation reasons of a transaction's parts that mean "try again later".
_THROTTLED_PARTS = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
LIST_INDEX = "by_list"
_BATCH_WRITE_MAX = 25
_BATCH_ATTEMPTS = 4


def read_secure_parameter(name, client=None):
    """The decrypted value of an SSM Parameter Store SecureString."""
    client = client or boto3.client("ssm")
    return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


class Table:
    """The one table: its client and name, shared by every part of the store, which call it through call()."""

    def __init__(self, name, client=None, endpoint_url=None):
        self.name = name
        # A low-level client: cheaper to create than a resource, and created once per app.
        self.client = client or boto3.client("dynamodb", endpoint_url=endpoint_url)

    def put_new(self, item, taken_error):
        """Put an item only if its key is free; raise taken_error otherwise. Never overwrites."""
        try:
            self.call(
                "put_item",
                TableName=self.name,
                Item=_marshal(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except _ConditionFailed:
            raise taken_error from None

    def call(self, operation, **kwargs):
        """Call the client, translating error codes (never messages) into domain errors."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed() from err
            if code == "TransactionCanceledException":
                # One reason per part, in order ("None" for a part that was fine); a throttle is transient.
                reasons = [reason.get("Code", "None") for reason in err.response.get("CancellationReasons", [])]
                if _THROTTLED_PARTS & set(reasons):
                    raise StoreUnavailable(code) from err
                raise _TransactionCanceled(reasons) from err
            if code in _THROTTLED:
                raise StoreUnavailable(code) from err
            raise
        except BotoCoreError as err:
            # A read timeout or a refused connection once botocore's retries gave up: as transient as a throttle.
            raise StoreUnavailable(type(err).__name__) from err

    def batch_get(self, keys, consistent=False):
        """The items at these keys (at most 100), in one BatchGetItem plus retries of what it left over.

        consistent: strongly consistent reads (twice the cost), for checks that must see a write just made.
        """
        found, pending = [], list(keys)
        for _ in range(_BATCH_ATTEMPTS):
            if not pending:
                break
            resp = self.call("batch_get_item", RequestItems={self.name: {"Keys": pending, "ConsistentRead": consistent}})
            found += [_unmarshal(item) for item in resp.get("Responses", {}).get(self.name, [])]
            pending = resp.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
        if pending:
            raise StoreUnavailable("batch_get_item left keys unprocessed")
        return found

    def batch_delete(self, keys):
        """Delete these keys, 25 per BatchWriteItem (DynamoDB's limit), retrying what is left over."""
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys])

    def batch_put(self, items):
        """Put these marshalled items (overwriting), 25 per BatchWriteItem, retrying what is left over."""
        self._batch_write([{"PutRequest": {"Item": item}} for item in items])

    def _batch_write(self, requests):
        for start in range(0, len(requests), _BATCH_WRITE_MAX):
            pending = requests[start:start + _BATCH_WRITE_MAX]
            for _ in range(_BATCH_ATTEMPTS):
                if not pending:
                    break
                resp = self.call("batch_write_item", RequestItems={self.name: pending})
                pending = resp.get("UnprocessedItems", {}).get(self.name, [])
            if pending:
                raise StoreUnavailable("batch_write_item left items unprocessed")

    def query_keys(self, pk, sk_prefix, limit):
        """The keys of at most `limit` items in one partition whose sort key starts with sk_prefix."""
        keys, start = [], None
        while len(keys) < limit:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.call(
                "query",
                TableName=self.name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues=_marshal({":pk": pk, ":prefix": sk_prefix}),
                ProjectionExpression="pk, sk",
                Limit=limit - len(keys),
                **kwargs,
            )
            keys += resp.get("Items", [])
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return keys

    def query_index(self, list_pk, limit, sk_prefix=None, newest_first=True):
        """At most `limit` items of one list of the by_list index (only its projected attributes)."""
        condition, values = "list_pk = :p", {":p": list_pk}
        if sk_prefix:
            condition += " AND begins_with(list_sk, :prefix)"
            values[":prefix"] = sk_prefix
        items, start = [], None
        while len(items) < limit:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.call(
                "query",
                TableName=self.name,
                IndexName=LIST_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=_marshal(values),
                ScanIndexForward=not newest_first,
                Limit=limit - len(items),
                **kwargs,
            )
            items += [_unmarshal(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return items


class _ConditionFailed(Exception):
    """Internal: a condition expression did not hold."""


class _TransactionCanceled(Exception):
    """Internal: a transaction wrote nothing; reasons holds each part's code ("ConditionalCheckFailed",
    "TransactionConflict" when another request was changing the same items, "None" for a part that held)."""

    def __init__(self, reasons):
        super().__init__(reasons)
        self.reasons = reasons


def _key(pk, sk):
    """The table key of an item."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _plain_key(key):
    """A table key as a plain dict of strings, to spread into an item."""
    return {name: value["S"] for name, value in key.items()}


def _marshal(item):
    """Plain dict -> DynamoDB attribute values (only the types this table uses)."""
    out = {}
    for name, value in item.items():
        if isinstance(value, bool):
            out[name] = {"BOOL": value}
        elif isinstance(value, int):
            out[name] = {"N": str(value)}
        elif isinstance(value, str):
            out[name] = {"S": value}
        elif isinstance(value, list) and all(isinstance(entry, str) for entry in value):
            out[name] = {"L": [{"S": entry} for entry in value]}  # a link's tags
        else:
            raise TypeError(f"cannot store {type(value).__name__} in attribute {name}")
    return out


def _unmarshal(item):
    """DynamoDB attribute values -> plain dict."""
    out = {}
    for name, value in item.items():
        (kind, raw), = value.items()
        if kind == "N":
            out[name] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
        elif kind == "SS":
            out[name] = set(raw)
        elif kind == "L":
            out[name] = [entry["S"] for entry in raw]
        else:
            out[name] = raw
    return out
