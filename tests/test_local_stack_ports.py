"""`make run`'s start-up port check: a port that only has connections in TIME_WAIT is free, as it is
for the servers that will listen there; a port where something listens is not."""
import socket
import time

import pytest

from local_stack.__main__ import _check_ports_free, port_is_free

_TIME_WAIT = "06"  # the state column of /proc/net/tcp


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _states_on(port):
    """The TCP states of every IPv4 socket whose local port is `port` (Linux's /proc/net/tcp)."""
    with open("/proc/net/tcp", encoding="ascii") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return [row[3] for row in rows if int(row[1].rsplit(":", 1)[1], 16) == port]


def _leave_time_wait_on(port):
    """Listen on the port, accept one connection and close it from the server side first, so the
    server's end sits in TIME_WAIT on the port (for 60 s) after the listener is gone, as when
    `make run` is stopped right after serving."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    served, _ = listener.accept()
    listener.close()
    served.close()  # the server side closes first: it is the side that waits
    assert client.recv(1) == b""  # the FIN arrived
    client.close()
    deadline = time.monotonic() + 5
    while _TIME_WAIT not in _states_on(port) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _TIME_WAIT in _states_on(port)


def _settings(**ports):
    settings = {"admin_port": _free_port(), "redirect_port": _free_port(), "dynamodb_port": _free_port()}
    settings.update(ports)
    return settings


def test_a_port_with_connections_in_time_wait_is_free_after_a_restart():
    port = _free_port()
    _leave_time_wait_on(port)
    with socket.socket() as plain:  # the old probe: no SO_REUSEADDR, so it saw the port as taken
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    assert port_is_free(port)
    _check_ports_free(_settings(dynamodb_port=port))  # no SystemExit
    # And a server does start there, as the probe said.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)


@pytest.mark.parametrize("setting", ["admin_port", "redirect_port", "dynamodb_port"])
def test_a_port_where_something_listens_is_refused_naming_the_setting(setting):
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(SystemExit) as stopped:
            _check_ports_free(_settings(**{setting: port}))
    message = str(stopped.value.code)
    assert f"Port {port} on 127.0.0.1 is in use" in message
    assert f"{setting.upper()}=<port>" in message


def test_a_port_where_something_listens_on_every_address_is_refused():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", 0))  # noqa: S104 - bound for a moment, to check the probe sees it
        listener.listen(1)
        assert not port_is_free(listener.getsockname()[1])
