"""Run the local stack as `make run` does, on free ports, for the integration and browser tests."""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from local_stack.dynamodb import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "integration-token-0123456789abcdef"
PASSWORD = "integration-password"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


class Stack:
    """A `python -m local_stack` process and what it printed."""

    def __init__(self, engine, data_dir):
        self.admin_port, self.redirect_port, self.dynamodb_port = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "ADMIN_PORT": str(self.admin_port),
            "REDIRECT_PORT": str(self.redirect_port),
            "DYNAMODB_PORT": str(self.dynamodb_port),
            "LOCAL_DYNAMODB": engine,
            "LOCAL_DATA_DIR": str(data_dir),
            "LOCAL_API_TOKEN": TOKEN,
            "LOCAL_ADMIN_PASSWORD": PASSWORD,
            "LINK_CACHE_SECONDS": "1",
            "CLICK_FLUSH_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_stack"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(180) or self.process.poll() is not None:
            self.stop()
            pytest.fail("local stack did not start:\n" + "\n".join(self.lines[-40:]))

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ready."):
                self._ready.set()

    def stop(self):
        """Ctrl-C, as a person would, and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGUSR1)  # every thread's stack, into self.lines
                time.sleep(2)
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def request(self, port, method, path, body=None, token=TOKEN, user_agent=BROWSER):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), data

    def api(self, method, path, body=None):
        status, _, data = self.request(self.admin_port, method, path, body)
        return status, json.loads(data) if data else None

    def short(self, method, short_id, user_agent=BROWSER):
        status, headers, _ = self.request(self.redirect_port, method, f"/{short_id}", token=None, user_agent=user_agent)
        return status, headers.get("Location")


def wait_for(predicate, timeout=10.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
