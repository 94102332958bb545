"""The loop guard: a destination that reaches the short links again is refused, in every spelling."""
import pytest

from tests.conftest import make_app
from webapp import url_guard
from webapp.exceptions import InvalidUrl

LOCAL_SHORT_BASE = "http://127.0.0.1:8080"
# Every spelling of a loopback host that a browser or curl would follow back to the local stack.
LOOPBACK_SPELLINGS = [
    "localhost", "LOCALHOST", "localhost.", "links.localhost",
    "127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7F.1", "0177.0.0.1", "0177.1",
    "127.255.255.254", "0x7f.0.0.1", "127.000.000.001",
    "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:7f00:1]", "[::ffff:127.0.0.1]", "[::FFFF:7F00:1]",
    "0.0.0.0", "[::]",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_loop_guard_refuses_localhost_aliases(host, scheme):
    with pytest.raises(InvalidUrl, match="redirect in a loop"):
        url_guard.normalise_url(f"{scheme}://{host}:8080/launch", LOCAL_SHORT_BASE)


@pytest.mark.parametrize("base", ["http://localhost:8080", "http://127.1:8080", "http://[::1]:8080"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:7f00:1]"])
def test_loop_guard_refuses_loopback_whatever_the_short_domain_spells(base, host):
    with pytest.raises(InvalidUrl, match="redirect in a loop"):
        url_guard.normalise_url(f"http://{host}:8080/x", base)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/",  # the admin, another port: not a loop
        "http://localhost:9999/x",
        "http://128.0.0.1:8080/x",  # not loopback
        "http://127.0.0.1.example.com:8080/x",  # a name, not an address
        "http://0x80000001:8080/x",
        "http://example.com/x",
        "http://[2001:db8::1]:8080/x",
        "http://1.2.3.4.5:8080/x",  # five parts: a name
    ],
)
def test_loop_guard_allows_other_hosts_and_ports(url):
    assert url_guard.normalise_url(url, LOCAL_SHORT_BASE)


@pytest.mark.parametrize(
    ("base", "host"),
    [
        ("https://sho.rt", "SHO.RT"),
        ("https://sho.rt", "sho.rt."),
        ("https://SHO.rt", "sho.rt"),
        ("https://shö-rt.example", "SHÖ-RT.example"),
        ("https://shö-rt.example", "shö-rt.example".encode("idna").decode()),
    ],
)
def test_loop_guard_compares_names_case_dot_and_punycode_insensitively(base, host):
    with pytest.raises(InvalidUrl, match="redirect in a loop"):
        url_guard.normalise_url(f"http://{host}/x", base)


def test_loop_guard_refuses_a_numeric_spelling_of_an_ip_short_domain():
    with pytest.raises(InvalidUrl, match="redirect in a loop"):
        url_guard.normalise_url("https://3232235777/x", "https://192.168.1.1")  # 192.168.1.1 as one number


EXECUTE_API = "abc123def4.execute-api.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    "setting",
    [EXECUTE_API, f"https://{EXECUTE_API}/", f"https://{EXECUTE_API.upper()}", f" {EXECUTE_API} "],
)
@pytest.mark.parametrize("url", [f"https://{EXECUTE_API}/launch", f"http://{EXECUTE_API}:443/x", f"https://{EXECUTE_API}./x"])
def test_loop_guard_refuses_the_execute_api_host_when_configured(setting, url):
    with pytest.raises(InvalidUrl, match="redirect in a loop"):
        url_guard.normalise_url(url, "https://sho.rt", [setting])
    assert url_guard.normalise_url(url, "https://sho.rt")  # not configured: nothing to compare with


def test_extra_loop_hosts_setting_is_a_comma_list_from_the_environment(ddb, monkeypatch):
    monkeypatch.setenv("SHORTENER_EXTRA_LOOP_HOSTS", f"https://{EXECUTE_API}/, other.example.org")
    app = make_app()
    assert app.config["EXTRA_LOOP_HOSTS"] == [EXECUTE_API, "other.example.org"]


def test_a_malformed_extra_loop_host_stops_start_up(ddb):
    with pytest.raises(RuntimeError, match="SHORTENER_EXTRA_LOOP_HOSTS"):
        make_app(EXTRA_LOOP_HOSTS="https://[not-an-ip/")


@pytest.fixture
def local_app(ddb):
    app = make_app(SHORT_BASE_URL=LOCAL_SHORT_BASE, EXTRA_LOOP_HOSTS=EXECUTE_API)
    store = app.extensions["store"]
    store.users.create("alice", "a-long-password")
    plaintext, _ = store.tokens.create("alice", "tests")
    app.token = plaintext
    return app


@pytest.mark.parametrize("host", ["localhost:8080", "127.1:8080", "[::ffff:7f00:1]:8080", EXECUTE_API])
def test_loop_guard_applies_to_the_api_and_the_form(local_app, host):
    client = local_app.test_client()
    headers = {"Authorization": f"Bearer {local_app.token}"}
    response = client.post("/api/links", json={"url": f"http://{host}/x"}, headers=headers)
    assert response.status_code == 422 and response.json["field"] == "url"
    assert "loop" in response.json["error"]
    client.post("/login", data={"username": "alice", "password": "a-long-password"})
    page = client.post("/links/new", data={"url": f"http://{host}/x", "expiry": "never"})
    assert page.status_code == 422 and "loop" in page.get_data(as_text=True)
