# One command to run the product, one to test it. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast soak bench package deploy scan audit smoke replay-dlq clean user token screenshots

# The local stack's settings, read by `make run` and by `make user`/`make token`, so the account
# commands reach the database of a stack started with the same values (see Settings in the README).
ADMIN_PORT ?= 5000
REDIRECT_PORT ?= 8080
DYNAMODB_PORT ?= 8000
TABLE_NAME ?= links-local
# Fixed, as in local_stack/dynamodb.py: DynamoDB Local keeps one database per access key and region.
LOCAL_REGION := us-east-1
LOCAL_KEY := local

$(STAMP): requirements.txt requirements-aggregator.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# axe-core, for the accessibility checks of tests/test_accessibility.py, as pinned in package-lock.json.
NODE_STAMP := node_modules/.installed-stamp
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## run: the whole product on 127.0.0.1 (admin :5000, short links :8080). Ctrl-C stops it.
run: $(STAMP)
	ADMIN_PORT=$(ADMIN_PORT) REDIRECT_PORT=$(REDIRECT_PORT) DYNAMODB_PORT=$(DYNAMODB_PORT) TABLE_NAME=$(TABLE_NAME) \
		$(BIN)/python -m local_stack

# The running local stack's database, for the account commands below.
LOCAL_ENV = env -u AWS_PROFILE -u AWS_SESSION_TOKEN \
	SHORTENER_LOCAL_MODE=true SHORTENER_TABLE_NAME=$(TABLE_NAME) SHORTENER_SHORT_BASE_URL=http://127.0.0.1:$(REDIRECT_PORT) \
	AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(DYNAMODB_PORT) \
	AWS_ACCESS_KEY_ID=$(LOCAL_KEY) AWS_SECRET_ACCESS_KEY=$(LOCAL_KEY) AWS_DEFAULT_REGION=$(LOCAL_REGION) AWS_REGION=$(LOCAL_REGION)

## user: add a staff account to the running local stack (prompts for the password): make user NAME=alice ROLE=editor
##   A stack started with other TABLE_NAME / DYNAMODB_PORT / REDIRECT_PORT needs the same ones here.
user: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make user NAME=alice [ROLE=admin|editor|viewer]"; exit 2; }
	$(LOCAL_ENV) $(BIN)/flask --app webapp.wsgi create-user "$(NAME)" --role "$(or $(ROLE),admin)"

## token: an API token for a user of the running local stack: make token NAME=alice LABEL="CI job"
token: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make token NAME=alice LABEL=..."; exit 2; }
	$(LOCAL_ENV) $(BIN)/flask --app webapp.wsgi create-token "$(NAME)" --name "$(or $(LABEL),script)"

## test: the whole suite (unit, integration on the local stack, browser, deploy checks).
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest

## test-fast: everything not marked slow (no packaging, local stack, DynamoDB Local, browser, checkov, pip-audit
## or bench smoke), on both cores; about a minute, for the edit-test loop. `make test` stays the whole suite.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2

## soak: 60 s of steady mixed traffic on the local stack, then zero errors, flat memory, every click
## counted (tests/soak.py). SOAK_SECONDS, SOAK_RATE, SOAK_RSS_GROWTH_MB change it.
soak: $(STAMP)
	$(BIN)/python -m tests.soak

## bench: benchmarks against the recipe's handler; writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m bench

## package: every deploy artifact, with no AWS account (it installs from PyPI): build/redirect.zip, build/aggregator.zip, their S3 keys
## (build/code-keys.txt, build/s3/) and build/admin.zip (`zappa package prod`, from .venv-package, with every compiled
## distribution swapped for its manylinux wheel for the settings' runtime and architecture; it stops if a binary would not load).
package: $(STAMP)
	$(BIN)/python -m deploy.package

## deploy: one command from an AWS account to a smoke-tested short link, for deploy/stages/$(STAGE).json:
##   make deploy STAGE=prod. Each change set is shown and asked about; unattended, or with the SSO client secret
##   in a file: .venv/bin/python -m deploy.deploy --stage prod --yes --oidc-client-secret-file PATH.
deploy: $(STAMP)
	@test -n "$(STAGE)" || { echo "usage: make deploy STAGE=prod (a file of deploy/stages/)"; exit 2; }
	$(BIN)/python -m deploy.deploy --stage "$(STAGE)"

## scan: checkov on cloudformation.yaml, offline, from .venv-scan (requirements-scan.txt). make test runs it too.
scan: $(STAMP)
	$(BIN)/python -m deploy.scan

## audit: pip-audit over the pinned requirements of the admin (with Zappa) and the aggregator, from .venv-audit
##   (requirements-audit.txt). Exit 1: a known vulnerability; exit 3: NOT AUDITED (PyPI's vulnerability data could
##   not be had). It needs the network, so .ci/run runs it after make test; make test checks its logic offline.
audit: $(STAMP)
	$(BIN)/python -m deploy.audit

## smoke: check a deployed stack end to end (create, follow, root, counted, disable, 410); standard library only.
##   make smoke ADMIN_URL=https://<admin>/prod SHORT_URL=<stack output ShortBaseUrl> STAGE=prod
##   The API token is asked for (not echoed), or read from the environment's SMOKE_TOKEN or from TOKEN_FILE=<path>
##   (chmod 600); never TOKEN=..., which the process list and the shell history would keep. Optional: STAGE (its
##   file's LinkCacheSeconds), CACHE_SECONDS (overrides the stage's, else cloudformation.yaml's Default), ROOT_URL
##   (the stack's AdminUrl, where the bare short domain redirects; default ADMIN_URL), COUNT_WITHIN (seconds, 120).
smoke: no_token = make smoke takes no TOKEN=: the process list and the shell history would keep it. \
    Give the token as SMOKE_TOKEN in the environment, TOKEN_FILE=path (chmod 600), or at the prompt
smoke: no_smoke_token = make smoke takes no SMOKE_TOKEN= on its command line: the process list and the shell history would keep it. \
    Export it in the environment (read -rs SMOKE_TOKEN && export SMOKE_TOKEN), give TOKEN_FILE=path (chmod 600), or use the prompt
smoke:
	$(if $(filter command line,$(origin TOKEN)),$(error $(no_token)))
	$(if $(filter command line,$(origin SMOKE_TOKEN)),$(error $(no_smoke_token)))
	@test -n "$(ADMIN_URL)" -a -n "$(SHORT_URL)" || { echo "usage: make smoke ADMIN_URL=... SHORT_URL=... [STAGE=prod] [TOKEN_FILE=path]"; exit 2; }
	@$(PYTHON) -m deploy.smoke --admin-url "$(ADMIN_URL)" --short-url "$(SHORT_URL)" \
		$(if $(ROOT_URL),--root-url "$(ROOT_URL)") $(if $(TOKEN_FILE),--token-file "$(TOKEN_FILE)") \
		$(if $(STAGE),--stage "$(STAGE)") $(if $(CACHE_SECONDS),--cache-seconds "$(CACHE_SECONDS)") \
		$(if $(COUNT_WITHIN),--count-within "$(COUNT_WITHIN)")

## replay-dlq: account for the click ranges the mapping discarded (lost or skipped), deleting each message once done.
##   make replay-dlq QUEUE_URL=<stack output DeadLetterQueueUrl> FUNCTION=<stack output AggregatorFunctionName>
replay-dlq: $(STAMP)
	@test -n "$(QUEUE_URL)" -a -n "$(FUNCTION)" || { echo "usage: make replay-dlq QUEUE_URL=... FUNCTION=..."; exit 2; }
	$(BIN)/python -m deploy.replay_dlq --queue-url "$(QUEUE_URL)" --function "$(FUNCTION)"

## screenshots: the README tour's pictures (docs/screenshots/*.png), taken in Chromium from a fresh local stack
##   with example links; run it again after changing a page.
screenshots: $(STAMP)
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .venv-* .cache build dist .pytest_cache node_modules
