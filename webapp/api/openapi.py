"""GET /api/openapi.json: the OpenAPI 3.1 description of the JSON API, for anyone, with no token."""
import json
from pathlib import Path

from flask import jsonify, request

from webapp.api import bp
from webapp.api.auth import public

# The description is a file beside this module (JSON: PyYAML is not in the admin's package), read
# once per process. tests/test_openapi.py keeps it true: against the URL map, and by a schemathesis
# run against the local stack.
SPEC_PATH = Path(__file__).with_name("openapi.json")
SPEC = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
# It changes only with a deploy: caches may keep it a while, and revalidate with the ETag after.
CACHE_CONTROL = "public, max-age=300"


@bp.get("/api/openapi.json")
@public
def openapi_description():
    """The API's OpenAPI description; its server is this app's own root, so it works under a stage prefix."""
    response = jsonify({**SPEC, "servers": [{"url": request.script_root or "/"}]})
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.add_etag()
    return response.make_conditional(request)
