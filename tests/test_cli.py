"""The Flask CLI commands and start-up configuration."""
import boto3
import pytest

from tests.conftest import ADMIN_USERNAME, TABLE_NAME, make_app
from webapp import create_app


def test_create_user_with_password_option(app, store):
    result = app.test_cli_runner().invoke(args=["create-user", "bob", "--password", "bobs-long-password"])
    assert result.exit_code == 0, result.output
    assert "Created user bob." in result.output
    assert store.users.verify_password("bob", "bobs-long-password")


def test_create_user_prompts_hidden_and_confirmed(app, store):
    result = app.test_cli_runner().invoke(args=["create-user", "carol"], input="carols-password\ncarols-password\n")
    assert result.exit_code == 0, result.output
    assert "carols-password" not in result.output  # hidden input is not echoed
    assert store.users.verify_password("carol", "carols-password")


def test_create_user_prompt_mismatch_retries(app, store):
    result = app.test_cli_runner().invoke(
        args=["create-user", "dave"], input="first-password\nother-password\ndaves-password\ndaves-password\n"
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert store.users.verify_password("dave", "daves-password")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-user", ADMIN_USERNAME, "--password", "long-enough-pw"], "already exists"),
        (["create-user", "bad name", "--password", "long-enough-pw"], "letters, digits"),
        (["create-user", "user#x", "--password", "long-enough-pw"], "letters, digits"),
        (["create-user", "erin", "--password", "short"], "at least 8 characters"),
    ],
)
def test_create_user_refusals(app, store, args, message):
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert store.users.get("erin") is None


def test_create_token_prints_a_working_token(app, store):
    result = app.test_cli_runner().invoke(args=["create-token", ADMIN_USERNAME, "--name", "ci"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert store.tokens.resolve(token)["username"] == ADMIN_USERNAME
    response = app.test_client().post(
        "/api/links", json={"url": "https://example.com/"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    assert response.json["created_by"] == ADMIN_USERNAME


def test_create_token_for_unknown_user(app):
    result = app.test_cli_runner().invoke(args=["create-token", "nobody", "--name", "ci"])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_create_token_needs_a_name(app):
    result = app.test_cli_runner().invoke(args=["create-token", ADMIN_USERNAME])
    assert result.exit_code != 0
    assert "--name" in result.output


# Start-up configuration


@pytest.fixture
def clean_env(monkeypatch):
    """No SHORTENER_* settings from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("SHORTENER_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"SHORTENER_TABLE_NAME": "t", "SHORTENER_SHORT_BASE_URL": "https://sho.rt"}, "SHORTENER_SECRET_KEY"),
        ({"SHORTENER_SECRET_KEY": "k", "SHORTENER_SHORT_BASE_URL": "https://sho.rt"}, "SHORTENER_TABLE_NAME"),
        ({"SHORTENER_SECRET_KEY": "k", "SHORTENER_TABLE_NAME": "t"}, "SHORTENER_SHORT_BASE_URL"),
        ({"SHORTENER_LOCAL_MODE": "false", "SHORTENER_TABLE_NAME": "t", "SHORTENER_SHORT_BASE_URL": "https://sho.rt"},
         "SHORTENER_SECRET_KEY"),
    ],
)
def test_refuses_to_start_without_required_settings(clean_env, env, missing):
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(RuntimeError, match=missing):
        create_app()


def test_starts_from_env(clean_env):
    clean_env.setenv("SHORTENER_SECRET_KEY", "k" * 32)
    clean_env.setenv("SHORTENER_TABLE_NAME", "links-prod")
    clean_env.setenv("SHORTENER_SHORT_BASE_URL", "https://sho.rt")
    clean_env.setenv("SHORTENER_CORS_ORIGINS", "https://a.example, https://b.example")
    app = create_app()
    assert app.config["SECRET_KEY"] == "k" * 32
    assert app.config["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["DEFAULT_EXPIRY_DAYS"] == 30 and app.config["ID_LENGTH"] == 7
    assert app.extensions["store"].table.name == "links-prod"


def test_local_mode_needs_no_secret_key(clean_env):
    clean_env.setenv("SHORTENER_LOCAL_MODE", "true")
    clean_env.setenv("SHORTENER_TABLE_NAME", "links-local")
    clean_env.setenv("SHORTENER_SHORT_BASE_URL", "http://127.0.0.1:8080")
    clean_env.setenv("SHORTENER_CORS_ORIGINS", '["http://127.0.0.1:3000"]')
    app = create_app()
    assert len(app.config["SECRET_KEY"]) >= 32 and app.config["SECRET_KEY"] != "dev"
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["CORS_ORIGINS"] == ["http://127.0.0.1:3000"]


def test_secret_key_from_ssm_parameter(clean_env, ddb):
    boto3.client("ssm").put_parameter(Name="/shortener/secret-key", Value="from-parameter-store", Type="SecureString")
    clean_env.setenv("SHORTENER_SECRET_KEY_PARAMETER", "/shortener/secret-key")
    clean_env.setenv("SHORTENER_TABLE_NAME", TABLE_NAME)
    clean_env.setenv("SHORTENER_SHORT_BASE_URL", "https://sho.rt")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-parameter-store"


def test_explicit_secret_key_wins_over_parameter(clean_env, ddb):
    clean_env.setenv("SHORTENER_SECRET_KEY", "explicit")
    clean_env.setenv("SHORTENER_SECRET_KEY_PARAMETER", "/does/not/exist")
    clean_env.setenv("SHORTENER_TABLE_NAME", TABLE_NAME)
    clean_env.setenv("SHORTENER_SHORT_BASE_URL", "https://sho.rt")
    assert create_app().config["SECRET_KEY"] == "explicit"


def test_template_folder_is_the_top_level_one(ddb):
    from pathlib import Path

    app = make_app()
    assert Path(app.template_folder) == Path(__file__).resolve().parent.parent / "templates"
    assert app.instance_path  # Flask computes it, but nothing creates or reads it


def test_wsgi_module_exposes_the_app(clean_env, ddb):
    import importlib
    import sys

    clean_env.setenv("SHORTENER_SECRET_KEY", "k")
    clean_env.setenv("SHORTENER_TABLE_NAME", TABLE_NAME)
    clean_env.setenv("SHORTENER_SHORT_BASE_URL", "https://sho.rt")
    sys.modules.pop("webapp.wsgi", None)
    wsgi = importlib.import_module("webapp.wsgi")
    assert callable(wsgi.app)
    assert wsgi.app.test_client().get("/health").json == {"status": "ok"}
    sys.modules.pop("webapp.wsgi", None)
