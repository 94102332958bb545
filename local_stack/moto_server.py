"""moto's AWS services on a loopback port, in a thread of this process, without a log line per request."""
import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass  # one line per Kinesis poll would drown the stack's own output


def serve(port, serialised=False):
    """Serve moto on 127.0.0.1:port; returns (endpoint, stop).

    serialised: one request at a time, for DynamoDB, where moto loses concurrent updates to
    one item (measured: 1,592 of 1,600 ADDs).
    """
    # Imported here: moto is heavy, and only the local stack needs it.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    if serialised:
        lock = threading.Lock()
        inner = app

        def app(environ, start_response):
            with lock:
                return list(inner(environ, start_response))

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="moto-server")
    thread.start()

    def stop():
        server.shutdown()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{port}", stop
