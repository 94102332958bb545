"""Settings that admins change at run time (not deploy-time config): one item per setting in the table."""
import re

from webapp import clock
from webapp.store.table import _key, _marshal, _plain_key, _unmarshal

SETTING_PK_PREFIX, SETTING_SK = "setting#", "setting"
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def setting_key(name):
    """The table key of a setting's item."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"not a setting name: {name!r}")
    return _key(f"{SETTING_PK_PREFIX}{name}", SETTING_SK)


class Settings:
    """Read and write named settings, each a small value (bool, int or str) in its own item."""

    def __init__(self, table):
        self.table = table

    def get(self, name, default=None):
        """The setting's value, or default when no admin has set it."""
        # Strongly consistent: a setting an admin just turned on (say, requiring two-factor) holds at once.
        resp = self.table.call("get_item", TableName=self.table.name, Key=setting_key(name), ConsistentRead=True)
        return _unmarshal(resp["Item"])["value"] if "Item" in resp else default

    def set(self, name, value, changed_by=None):
        """Store the setting's value (overwriting the old one), with when and by whom it was changed."""
        item = {
            **_plain_key(setting_key(name)),
            "value": value,
            "changed_at": clock.format_timestamp(clock.utcnow()),
        }
        if changed_by:
            item["changed_by"] = changed_by
        self.table.call("put_item", TableName=self.table.name, Item=_marshal(item))

    def unset(self, name):
        """Remove the setting, so that readers fall back to their default (the audit record keeps who did)."""
        self.table.call("delete_item", TableName=self.table.name, Key=setting_key(name))
