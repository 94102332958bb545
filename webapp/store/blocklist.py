"""The destination blocklist: one item per rule, every rule in one partition.

One item per rule rather than one item holding the list: adding is a conditional put (a rule added
twice collides on its key), removing is one delete, two admins never overwrite each other's edits,
and no item nears DynamoDB's 400 KB limit. Reading the whole list is one Query of one partition
(a page per 1 MB), which MAX_RULES keeps small; there is no Scan and no index.
"""
import hashlib
import re

from webapp import clock
from webapp.exceptions import StoreError
from webapp.store.table import _ConditionFailed, _key, _marshal, _unmarshal

BLOCKLIST_PK = "blocklist#rules"  # a "#" no link id can hold, so no slug shares the partition
RULE_SK_PREFIX = "rule#"
# Every link creation reads the whole list: this bounds its cost (and each page of the admin list).
MAX_RULES = 1000
_ID_RE = re.compile(r"[0-9a-f]{16}")


class RuleExists(StoreError):
    """The blocklist already has this rule; nothing was written."""


class RuleNotFound(StoreError):
    """No blocklist rule has this id."""


class BlocklistFull(StoreError):
    """The blocklist holds MAX_RULES rules already; nothing was written."""


def id_of(kind, value):
    """A rule's id, derived from what it blocks: the same rule always has the same key."""
    return hashlib.sha256(f"{kind}\n{value}".encode("utf-8")).hexdigest()[:16]


class Blocklist:
    """The rules that refuse destinations (webapp.abuse holds what they mean; this part only stores them)."""

    def __init__(self, table):
        self.table = table

    def add(self, kind, value, created_by):
        """Store a rule (kind and value already checked); raise RuleExists or BlocklistFull."""
        # Two admins adding at the same moment may pass this count together: the cap is a bound on
        # cost, not a quota, and one rule over it harms nothing.
        if len(self.list()) >= MAX_RULES:
            raise BlocklistFull()
        rule = {
            "id": id_of(kind, value),
            "kind": kind,
            "value": value,
            "created_by": created_by,
            "created_at": clock.format_timestamp(clock.utcnow()),
        }
        key = _key(BLOCKLIST_PK, f"{RULE_SK_PREFIX}{rule['id']}")
        self.table.put_new({"pk": key["pk"]["S"], "sk": key["sk"]["S"], **rule}, RuleExists())
        return rule

    def remove(self, rule_id):
        """Delete the rule with this id and return it; raise RuleNotFound when there is none."""
        if not isinstance(rule_id, str) or not _ID_RE.fullmatch(rule_id):
            raise RuleNotFound()  # no such key could exist, and a huge one would be a DynamoDB error
        try:
            resp = self.table.call(
                "delete_item",
                TableName=self.table.name,
                Key=_key(BLOCKLIST_PK, f"{RULE_SK_PREFIX}{rule_id}"),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except _ConditionFailed:
            raise RuleNotFound() from None
        return _rule(resp["Attributes"])

    def list(self):
        """Every rule, sorted by kind and value; read consistently, so a rule applies as soon as it is added."""
        rules, start = [], None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.table.call(
                "query",
                TableName=self.table.name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues=_marshal({":pk": BLOCKLIST_PK, ":prefix": RULE_SK_PREFIX}),
                ConsistentRead=True,
                **kwargs,
            )
            rules += [_rule(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                return sorted(rules, key=lambda rule: (rule["kind"], rule["value"]))


def _rule(item):
    item = _unmarshal(item)
    return {name: item.get(name) for name in ("id", "kind", "value", "created_by", "created_at")}
