"""An outside review of issue 15's access hardening: each test is an attack or an AWS behaviour that
the code first got wrong (see the commit that added it)."""
import pytest
from botocore.exceptions import ClientError

from tests.conftest import add_user


def _cancelled(reasons):
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": [{"Code": code} for code in reasons]}, "TransactWriteItems")


# Concurrent demotion as DynamoDB really does it: two transactions that touch the same two items can
# BOTH be cancelled with TransactionConflict (each found the other in progress). Retrying the losing
# attempt is what makes exactly one of the two opposite changes happen.


def test_two_admins_demoting_each_other_when_dynamodb_cancels_both_leaves_exactly_one_change(store, monkeypatch):
    from webapp.exceptions import CallerNotAdmin

    add_user(store, "ann", "admin")
    add_user(store, "ben", "admin")
    real, cancelled_once = store.table.client.transact_write_items, set()

    def transact(**kwargs):
        caller = kwargs["TransactItems"][0]["ConditionCheck"]["Key"]["pk"]["S"]
        if caller not in cancelled_once:  # each change's first try met the other one in flight
            cancelled_once.add(caller)
            raise _cancelled(["TransactionConflict", "TransactionConflict"])
        return real(**kwargs)

    monkeypatch.setattr(store.table.client, "transact_write_items", transact)
    # Both passed every check of the API (they are admins), and both transactions were cancelled.
    store.users.set_role("ben", "viewer", by="ann")
    with pytest.raises(CallerNotAdmin):
        store.users.set_role("ann", "viewer", by="ben")
    assert (store.users.get("ann")["role"], store.users.get("ben")["role"]) == ("admin", "viewer")


def test_a_change_that_keeps_meeting_other_transactions_is_refused_not_retried_for_ever(app, store, monkeypatch):
    from webapp.exceptions import ChangeConflict

    add_user(store, "ann", "admin")
    add_user(store, "ben", "editor")
    tries = []

    def transact(**kwargs):
        tries.append(1)
        raise _cancelled(["None", "TransactionConflict"])

    monkeypatch.setattr(store.table.client, "transact_write_items", transact)
    with pytest.raises(ChangeConflict):
        store.users.set_role("ben", "viewer", by="ann")
    assert 1 < len(tries) <= 5
