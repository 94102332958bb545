# One command to run the product, one to test it. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench package scan smoke replay-dlq clean user token

$(STAMP): requirements.txt requirements-aggregator.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

## run: the whole product on 127.0.0.1 (admin :5000, short links :8080). Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/python -m local_stack

# The running local stack's database, for the account commands below.
LOCAL_ENV = SHORTENER_LOCAL_MODE=true SHORTENER_TABLE_NAME=links-local SHORTENER_SHORT_BASE_URL=http://127.0.0.1:8080 \
	AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$${DYNAMODB_PORT:-8000} \
	AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1

## user: add a staff account to the running local stack (prompts for the password): make user NAME=alice ROLE=editor
user: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make user NAME=alice [ROLE=admin|editor|viewer]"; exit 2; }
	$(LOCAL_ENV) $(BIN)/flask --app webapp.wsgi create-user "$(NAME)" --role "$(or $(ROLE),admin)"

## token: an API token for a user of the running local stack: make token NAME=alice LABEL="CI job"
token: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make token NAME=alice LABEL=..."; exit 2; }
	$(LOCAL_ENV) $(BIN)/flask --app webapp.wsgi create-token "$(NAME)" --name "$(or $(LABEL),script)"

## test: the whole suite (unit, integration on the local stack, browser, deploy checks).
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: benchmarks against the recipe's handler; writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m bench

## package: every deploy artifact, with no AWS account (it installs from PyPI): build/redirect.zip, build/aggregator.zip, their S3 keys
## (build/code-keys.txt, build/s3/) and build/admin.zip (`zappa package prod`, from .venv-package).
package: $(STAMP)
	$(BIN)/python -m deploy.package

## scan: checkov on cloudformation.yaml, offline, from .venv-scan (requirements-scan.txt). make test runs it too.
scan: $(STAMP)
	$(BIN)/python -m deploy.scan

## smoke: check a deployed stack end to end (create, follow, counted, disable, 410); standard library only.
##   make smoke ADMIN_URL=https://<admin>/prod SHORT_URL=<stack output ShortBaseUrl> TOKEN=<API token>
##   Optional: COUNT_WITHIN (seconds, 120), CACHE_SECONDS (the stack's LinkCacheSeconds, 10).
smoke:
	@test -n "$(ADMIN_URL)" -a -n "$(SHORT_URL)" -a -n "$(TOKEN)" || { echo "usage: make smoke ADMIN_URL=... SHORT_URL=... TOKEN=..."; exit 2; }
	@SMOKE_TOKEN="$(TOKEN)" $(PYTHON) -m deploy.smoke --admin-url "$(ADMIN_URL)" --short-url "$(SHORT_URL)" \
		--count-within "$(or $(COUNT_WITHIN),120)" --cache-seconds "$(or $(CACHE_SECONDS),10)"

## replay-dlq: send failed click batches back to the aggregator, deleting each once it is applied.
##   make replay-dlq QUEUE_URL=<stack output DeadLetterQueueUrl> FUNCTION=<stack output AggregatorFunctionName>
replay-dlq: $(STAMP)
	@test -n "$(QUEUE_URL)" -a -n "$(FUNCTION)" || { echo "usage: make replay-dlq QUEUE_URL=... FUNCTION=..."; exit 2; }
	$(BIN)/python -m deploy.replay_dlq --queue-url "$(QUEUE_URL)" --function "$(FUNCTION)"

clean:
	rm -rf $(VENV) .venv-* .cache build dist .pytest_cache
