# The commands the README gives. `make test` is exactly what CI runs (.ci/run).
# Dependencies are installed by purpose, from the hash-locked files in requirements/:
# `make run` needs only the local stack and the CLI; the test, browser and lint tools
# come in with the targets that use them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check --quiet
LOCAL_LOCK := requirements.txt requirements/local.txt client/pyproject.toml
DEV_LOCK   := requirements/test.txt requirements/browser.txt requirements/lint.txt
hash = $(shell cat $(1) | cksum | cut -d' ' -f1)
LOCAL_STAMP := $(VENV)/.local-$(call hash,$(LOCAL_LOCK))
DEV_STAMP   := $(VENV)/.dev-$(call hash,$(LOCAL_LOCK) $(DEV_LOCK))

.DEFAULT_GOAL := help
.PHONY: help install install-dev run unit test lint lint-infra policies package deploy rerun-failed plan bench bench-huge fuzz test-live lock clean

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

$(LOCAL_STAMP): $(LOCAL_LOCK)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements.txt -r requirements/local.txt
	# The client is a package of its own (client/pyproject.toml); installed editable, its
	# `presigned-upload` command runs this checkout. Its dependencies are in local.txt.
	$(PIP) install --no-deps --no-build-isolation --editable ./client
	rm -f $(VENV)/.local-* $(VENV)/.dev-* && touch $@

$(DEV_STAMP): $(LOCAL_STAMP) $(DEV_LOCK)
	$(PIP) install --require-hashes -r requirements/test.txt -r requirements/browser.txt \
		-r requirements/lint.txt
	rm -f $(VENV)/.dev-* && touch $@

# checkov has a venv of its own: its pins would clash with the project's.
CHECKOV := .cache/checkov
CHECKOV_STAMP := $(CHECKOV)/.stamp-$(call hash,requirements/checkov.txt)
$(CHECKOV_STAMP): requirements/checkov.txt
	test -d $(CHECKOV) || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip --disable-pip-version-check --quiet install --require-hashes \
		-r requirements/checkov.txt
	rm -f $(CHECKOV)/.stamp-* && touch $@

install: $(LOCAL_STAMP)
install-dev: $(DEV_STAMP)

## run: local S3 + bucket + `chalice local` + upload page (S3=strict: LocalStack, signatures checked)
S3 ?= moto
run: install
	$(BIN)/python -m devstack --s3 $(S3) $(RUN_ARGS)

## unit: the fast inner loop: unit and route tests, no subprocesses
unit: install-dev
	HYPOTHESIS_PROFILE=dev $(BIN)/pytest -q -m "not slow" tests/unit tests/functional

## lint: ruff (lint and format check) and strict mypy
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: lint, then every tier (unit, route, end-to-end, browser, packaging); what CI runs
test: lint
	$(BIN)/pytest

## bench: benchmarks (signing, load, upload throughput, browser), each side by side in one run
bench: install-dev
	$(BIN)/python -m bench.signing
	$(BIN)/python -m bench.companion_cpu
	$(BIN)/python -m bench.quotas
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.upload_throughput
	$(BIN)/python -m bench.browser_throughput

## bench-huge: 6 GiB through the CLI, killed and resumed (needs S3_ENDPOINT: an S3 on disk)
bench-huge: install-dev
	@test -n "$(S3_ENDPOINT)" || { echo "set S3_ENDPOINT, e.g. a local LocalStack or MinIO"; exit 2; }
	$(BIN)/python -m bench.huge_upload --s3-endpoint $(S3_ENDPOINT)

## fuzz: a longer schemathesis run than CI's, with a random seed
fuzz: install-dev
	FUZZ_MAX_EXAMPLES=300 FUZZ_SEED=random $(BIN)/pytest -ra -p no:randomly tests/e2e/test_fuzz.py

## lint-infra: cfn-lint and checkov on dev's and prod's packaged templates, the bucket and the WAF
# Every stage of config.json that is not local*: a new stage is linted too.
DEPLOYED_STAGES := $(shell $(PYTHON) -c "import json; print(*(s for s in json.load(open('.chalice/config.json'))['stages'] if not s.startswith('local')))")
INFRA_FILES := $(DEPLOYED_STAGES:%=build/%/sam.json) infra/bucket.yaml infra/waf.yaml
lint-infra: install-dev $(CHECKOV_STAMP)
	for stage in $(DEPLOYED_STAGES); do \
		$(BIN)/python -m infra.package --stage $$stage build/$$stage >/dev/null 2>&1 || exit 1; done
	$(BIN)/cfn-lint $(INFRA_FILES)
	# Each finding kept is skipped with its reason: in infra/bucket.yaml's comments, and in
	# the packaged template's Metadata (infra/package.py's CHECKOV_SKIPS).
	$(CHECKOV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(INFRA_FILES:%=-f %)

## policies: write .chalice/policy-*.json from config.json (after changing a bucket, prefix or auth)
policies: install
	$(BIN)/python -m infra.policies

## package: the stage's CloudFormation (SAM) template and zip in build/<stage>/ (STAGE=prod)
STAGE ?= prod
package: install
	$(BIN)/python -m infra.package --stage $(STAGE) build/$(STAGE)

## deploy: STAGE (prod) to AWS: the bucket stack, then the API wired to its outputs (DRY_RUN=1, WAF=1, ALARM_TOPIC=arn)
# Only the local stack's dependencies: Chalice packages, boto3 deploys.
deploy: install
	$(BIN)/python -m infra.deploy --stage $(STAGE) $(if $(DRY_RUN),--dry-run) $(if $(WAF),--waf) \
		$(if $(ALARM_TOPIC),--alarm-topic $(ALARM_TOPIC))

## rerun-failed: run the verifier again on the events it gave up on (STAGE=prod)
rerun-failed: install
	$(BIN)/python -m infra.rerun_failed --stage $(STAGE)

## plan: what `make deploy` would do, checked and packaged offline (no AWS call)
plan:
	$(MAKE) deploy DRY_RUN=1

## test-live: the signature tier against a strict S3 (real AWS, or LIVE_S3_ENDPOINT)
test-live: install-dev
	@test -n "$(LIVE_S3_BUCKET)" || { echo "set LIVE_S3_BUCKET (and LIVE_S3_ENDPOINT for a local strict S3)"; exit 2; }
	LIVE_S3_BUCKET=$(LIVE_S3_BUCKET) LIVE_S3_ENDPOINT=$(LIVE_S3_ENDPOINT) $(BIN)/pytest -ra tests/live

## lock: re-resolve requirements/*.in into the hash-locked requirements/*.txt (uses uv)
UV_VERSION := 0.13.9
lock:
	test -x .cache/uv/bin/uv || { $(PYTHON) -m venv .cache/uv && .cache/uv/bin/pip install --quiet uv==$(UV_VERSION); }
	cd requirements && for f in local test browser lint checkov; do \
		../.cache/uv/bin/uv pip compile --quiet --generate-hashes --universal \
			--python-version 3.11 --custom-compile-command "make lock" $$f.in -o $$f.txt || exit 1; \
	done
	cd requirements && ../.cache/uv/bin/uv pip compile --quiet --generate-hashes --python-platform linux \
		--python-version 3.13 --custom-compile-command "make lock" strict-s3.in -o strict-s3.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis
