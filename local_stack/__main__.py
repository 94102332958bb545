"""`make run`: the whole product on 127.0.0.1, with the same code that runs on AWS.

- an embedded DynamoDB (DynamoDB Local, or moto when there is no Java), table from cloudformation.yaml;
- the admin app on ADMIN_PORT (default 5000);
- the real redirect handler on REDIRECT_PORT (default 8080), behind an HTTP API stand-in;
- the click pipeline: the redirect's stdout click lines go, as CloudWatch Logs records, onto a
  Kinesis stream (moto, in process), read in ordered batches by a stand-in for Lambda's event
  source mapping that invokes the real aggregator, retries, and sends discarded batches to a queue;
- the salts of the visitor hash, in their own table (the template's SaltsTable, `<table>-salts`), rotated
  at start and at the template's schedule (aggregator/salts.py).
"""
import faulthandler
import json
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from local_stack import click_stream, dynamodb
from local_stack.event_source import EventSourceMapping, mapping_settings, sqs_destination
from local_stack.http_api import make_server as make_http_api
from local_stack.log_subscription import LogSubscription
from local_stack.salt_schedule import SaltSchedule
from local_stack.template import SALTS_TABLE_RESOURCE, salts_table_name

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SECURITY_CONTACT = "mailto:security@example.com"


def _settings():
    data_dir = Path(os.environ.get("LOCAL_DATA_DIR") or ROOT / ".local")
    return {
        "admin_port": int(os.environ.get("ADMIN_PORT", "5000")),
        "redirect_port": int(os.environ.get("REDIRECT_PORT", "8080")),
        "engine": os.environ.get("LOCAL_DYNAMODB", "auto"),
        # Fixed by default so `make user` / `make token` can reach the running stack's database.
        "dynamodb_port": int(os.environ.get("DYNAMODB_PORT", "8000")),
        "data_dir": data_dir,
        "table_name": os.environ.get("TABLE_NAME", "links-local"),
        # The salts' own table (the template's SaltsTable): SALT_TABLE_NAME, else beside the links table.
        "salt_table_name": os.environ.get("SALT_TABLE_NAME")
        or salts_table_name(os.environ.get("TABLE_NAME", "links-local")),
        "flush_seconds": float(os.environ.get("CLICK_FLUSH_SECONDS", "1")),
        "batch_window_seconds": float(os.environ.get("CLICK_BATCH_WINDOW_SECONDS", "0.5")),
        # A fake OpenID Connect provider on loopback, to try single sign-on without a real one.
        "fake_oidc": os.environ.get("LOCAL_FAKE_OIDC", "") not in ("", "0", "false"),
        # security.txt on both ports (the redirect's variables, given to the admin too); a placeholder by default.
        "security_contact": os.environ.get("SECURITY_CONTACT") or LOCAL_SECURITY_CONTACT,
        "security_policy": os.environ.get("SECURITY_POLICY") or None,
    }


def _local_secrets(data_dir):
    """The local admin password, API token and session key: from the environment, else generated once.

    Generated values are kept in the git-ignored data folder so they survive a restart.
    """
    path = data_dir / "local-credentials.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    values = {
        "password": os.environ.get("LOCAL_ADMIN_PASSWORD") or stored.get("password") or secrets.token_urlsafe(12),
        "token": os.environ.get("LOCAL_API_TOKEN") or stored.get("token") or secrets.token_urlsafe(32),
        "secret_key": stored.get("secret_key") or secrets.token_hex(32),
    }
    generated = {
        key for key, env in (("password", "LOCAL_ADMIN_PASSWORD"), ("token", "LOCAL_API_TOKEN")) if not os.environ.get(env)
    }
    if values != stored:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(values))
    return values, generated


def _serve(server, name):
    thread = threading.Thread(target=server.serve_forever, daemon=True, name=name)
    thread.start()
    return thread


def _check_ports_free(settings):
    """Stop with a clear message, before starting anything, when a port is taken."""
    for name in ("admin_port", "redirect_port", "dynamodb_port"):
        port = settings[name]
        if not port_is_free(port):
            sys.exit(
                f"Port {port} on 127.0.0.1 is in use (is `make run` already running?). "
                f"Choose another with {name.upper()}=<port>."
            )


def port_is_free(port, host="127.0.0.1"):
    """True when our servers could listen on the port: judged as they judge it, with SO_REUSEADDR.

    The servers (werkzeug's, http.server's, DynamoDB Local's) set SO_REUSEADDR, so connections of a
    stopped run still in TIME_WAIT do not stop them; a socket that listens there still does.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def main():
    """Start everything, print where it is, and run until Ctrl-C."""
    # SIGUSR1 prints every thread's stack: what a stop that hangs is waiting for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = _settings()
    _check_ports_free(settings)
    engine = dynamodb.start(
        settings["engine"], data_dir=settings["data_dir"] / "dynamodb", port=settings["dynamodb_port"]
    )
    try:
        stream = click_stream.start()
        try:
            _run(settings, engine, stream)
        finally:
            stream.stop()
    finally:
        # Also on a failure or a Ctrl-C during start-up: never leave Java running behind us.
        engine.stop()
    print("Stopped.", flush=True)


def _run(settings, engine, stream):
    """Everything on top of the database, until Ctrl-C."""
    # The handlers build their clients at import time from these, exactly as in Lambda.
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": engine.endpoint,
            "AWS_ENDPOINT_URL_KINESIS": stream.endpoint,
            "CLICK_STREAM_NAME": stream.stream_name,
            "AWS_ACCESS_KEY_ID": dynamodb.LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": dynamodb.LOCAL_ACCESS_KEY,
            "AWS_DEFAULT_REGION": dynamodb.REGION,
            "TABLE_NAME": settings["table_name"],
            "SALT_TABLE_NAME": settings["salt_table_name"],
            "ROOT_REDIRECT_URL": f"http://127.0.0.1:{settings['admin_port']}/",
            "SECURITY_CONTACT": settings["security_contact"],
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    created = dynamodb.ensure_table(engine.client(), settings["table_name"])
    dynamodb.ensure_table(engine.client(), settings["salt_table_name"], resource=SALTS_TABLE_RESOURCE)
    # Today's salt exists before the first click; its summary lines go to the terminal, not the redirect's log.
    salt_schedule = SaltSchedule(engine.client(), settings["salt_table_name"], out=sys.__stdout__).start()

    import aggregator.handler
    import redirect_fn.handler
    from webapp import create_app

    short_base_url = f"http://127.0.0.1:{settings['redirect_port']}"
    values, generated = _local_secrets(settings["data_dir"])
    config = {
        "TABLE_NAME": settings["table_name"],
        "SHORT_BASE_URL": short_base_url,
        "SECRET_KEY": values["secret_key"],
        "LOCAL_MODE": True,
        "SECURITY_CONTACT": settings["security_contact"],
        "SECURITY_POLICY": settings["security_policy"],
    }
    provider = _start_fake_oidc(settings, config) if settings["fake_oidc"] else None
    app = create_app(config)
    store = app.extensions["store"]
    store.users.ensure("admin", values["password"])
    store.tokens.ensure("admin", values["token"], name="local token")

    # The template's batch size, retries and record age, and the stream's retention; a shorter window.
    mapping = EventSourceMapping(
        stream.kinesis,
        stream.stream_name,
        aggregator.handler.lambda_handler,
        sqs_destination(stream.sqs, stream.queue_url),
        batch_size=mapping_settings()["batch_size"],
        window=settings["batch_window_seconds"],
        echo=sys.__stdout__,
    ).start_at("TRIM_HORIZON").start()
    subscription = LogSubscription(stream.put, interval=settings["flush_seconds"]).start()
    sys.stdout = subscription
    redirect_server = make_http_api(redirect_fn.handler.lambda_handler, settings["redirect_port"])
    admin_server = make_server("127.0.0.1", settings["admin_port"], app, threaded=True)
    _serve(redirect_server, "redirect")
    _serve(admin_server, "admin")

    print(f"DynamoDB: {engine.name} at {engine.endpoint}; data: {engine.data_location}")
    print(f"Table {settings['table_name']!r} {'created from cloudformation.yaml' if created else 'found, data kept'}; "
          f"salts in {settings['salt_table_name']!r}")
    print(f"Admin:        http://127.0.0.1:{settings['admin_port']}   (user: admin)")
    print(f"Short links:  {short_base_url}/<id>")
    print(
        f"Clicks: stream {stream.stream_name!r} at {stream.endpoint} (records every {settings['flush_seconds']:g} s, "
        f"batching window {settings['batch_window_seconds']:g} s); failed batches go to {stream.queue_url}"
    )
    if "password" in generated:
        print(f"Admin password (generated): {values['password']}   (set LOCAL_ADMIN_PASSWORD to choose one)")
    if "token" in generated:
        print(f"API token (generated):      {values['token']}   (set LOCAL_API_TOKEN to choose one)")
    if generated:
        print(f"Generated values are kept in {settings['data_dir'] / 'local-credentials.json'}")
    if provider is not None:
        print(f"Fake SSO:     {provider.issuer}   (groups shortener-admins, -editors, -viewers map to roles)")
    print("Ready. Ctrl-C stops everything.", flush=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()

    print("Stopping...", flush=True)
    admin_server.shutdown()
    redirect_server.shutdown()
    subscription.stop()
    mapping.stop()
    salt_schedule.stop()
    if provider is not None:
        provider.stop()
    sys.stdout = sys.__stdout__


def _start_fake_oidc(settings, config):
    """Start the loopback OpenID Connect provider and point the admin's SSO settings at it."""
    from local_stack.fake_oidc import FakeOidcProvider

    client_secret = secrets.token_urlsafe(24)
    callback = f"http://127.0.0.1:{settings['admin_port']}/login/sso/callback"
    provider = FakeOidcProvider("local-admin", client_secret, [callback], interactive=True).start()
    config.update(
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID="local-admin",
        OIDC_CLIENT_SECRET=client_secret,
        OIDC_ROLE_MAP={"shortener-admins": "admin", "shortener-editors": "editor", "shortener-viewers": "viewer"},
        OIDC_PROVIDER_NAME="the fake local SSO",
    )
    return provider


if __name__ == "__main__":
    main()
