"""A stand-in HTTP service on 127.0.0.1 for a test (a reputation service, say): started on a free port
in a daemon thread, and stopped, closed and joined at the end, so no test leaves a server behind."""
import threading
from http.server import ThreadingHTTPServer


class LoopbackServer:
    """ThreadingHTTPServer(("127.0.0.1", 0), handler), serving from start until stop()."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()
