"""The module-level app for Zappa (app_function "webapp.wsgi.app") and `flask --app webapp.wsgi`."""
from webapp import create_app

app = create_app()
