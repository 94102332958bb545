"""The admin app under a script root, as Zappa serves it on an HTTP API stage ("/prod" in SCRIPT_NAME).

The packaged zip is checked the same way in test_deploy_packages.py; these run in the edit-test loop.
"""
import re

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

STAGE = "/prod"


class StagedClient:
    """The test client, with every request under base URL http://localhost/prod (so SCRIPT_NAME=/prod)."""

    def __init__(self, client):
        self._client = client

    def get(self, path, **kwargs):
        return self._client.get(path, base_url="http://localhost" + STAGE, **kwargs)

    def post(self, path, **kwargs):
        return self._client.post(path, base_url="http://localhost" + STAGE, **kwargs)


@pytest.fixture
def staged(client):
    return StagedClient(client)


def test_sign_in_redirect_keeps_the_stage_in_next(staged):
    response = staged.get("/links/abc1234?tab=stats")
    assert response.status_code == 303
    assert response.headers["Location"] == "/prod/login?next=/prod/links/abc1234?tab%3Dstats"


def test_after_sign_in_the_next_target_is_under_the_stage(staged):
    response = staged.post("/login", query_string={"next": "/prod/links/abc1234"},
                           data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/prod/links/abc1234"


def test_without_next_sign_in_lands_on_the_staged_dashboard(staged):
    response = staged.post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert response.headers["Location"] == "/prod/dashboard"


def test_every_link_and_form_on_a_page_stays_under_the_stage(staged):
    staged.post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    page = staged.get("/").get_data(as_text=True)
    targets = re.findall(r'(?:href|action|src)="(/[^"]*)"', page)
    assert targets, "the list page links to the new-link form, its stylesheet and sign-out"
    assert [t for t in targets if not t.startswith(STAGE + "/")] == []
