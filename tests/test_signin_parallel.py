"""Parallel sign-in guesses on DynamoDB Local (real conditional writes under concurrency; moto's are
not atomic across threads, so tests/test_signin_limits.py cannot show this).

Many threads reserve an attempt for one subject at once, and exactly the limit succeed: the counter
is one conditional update, so no two guesses can read the same count and both slip in.
Run alone: `.venv/bin/python -m pytest tests/test_signin_parallel.py`; deselect with `-m "not integration"`.
"""
import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, make_app
from tests.support.dynamodb_local import NO_JAVA, app_on_fresh_table

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(NO_JAVA, reason="DynamoDB Local needs Java 11+"),
]
THREADS = 16
GUESSES = 2 * THREADS  # per round, against a limit of LIMIT (a multiple of THREADS: see _all_at_once)
LIMIT = 5
ROUNDS = 5  # a race that slips through once in a while still shows in one of the rounds
TIME_LIMIT = 120  # seconds for all the rounds of one test
WINDOW = 900


@pytest.fixture
def app(dynamodb_local, monkeypatch, clock):
    """The admin app on a fresh table of DynamoDB Local, with credentials of its one database, at the
    start of a sign-in window (on the hour), so that no burst straddles two windows."""
    clock.now = clock.now.replace(minute=0, second=0, microsecond=0)
    return app_on_fresh_table(dynamodb_local, monkeypatch, make_app, SIGNIN_ACCOUNT_LIMIT=LIMIT, SIGNIN_WINDOW_SECONDS=WINDOW)


def _all_at_once(task, count):
    """Run task(n) for n in range(count) on THREADS threads, each batch of THREADS released together; the results.

    count is a multiple of THREADS, so that every batch fills the (reusable) barrier.
    """
    assert count % THREADS == 0
    barrier = Barrier(THREADS)

    def run(n):
        barrier.wait(timeout=30)
        return task(n)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_reservations_for_one_subject_stop_exactly_at_the_limit(app):
    store = app.extensions["store"]
    started = time.monotonic()
    for round_ in range(ROUNDS):
        subject = f"account#parallel{round_}"
        results = _all_at_once(lambda _n: store.sign_ins.reserve(subject, LIMIT, WINDOW), GUESSES)
        assert results.count(True) == LIMIT, f"round {round_}: {results.count(True)} of {GUESSES} reserved, limit {LIMIT}"
    assert time.monotonic() - started < TIME_LIMIT


def test_parallel_wrong_passwords_lock_the_account_after_exactly_the_limit(app):
    """Through the sign-in form, from many addresses (so only the account's limit applies)."""
    app.extensions["store"].users.create(ADMIN_USERNAME, ADMIN_PASSWORD)

    def guess(n):
        client = app.test_client()  # one client per request: the test client is not shared across threads
        return client.post("/login", data={"username": ADMIN_USERNAME, "password": "wrong-password"},
                           environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"}).status_code

    statuses = _all_at_once(guess, GUESSES)
    assert sorted(statuses) == [422] * LIMIT + [429] * (GUESSES - LIMIT)
