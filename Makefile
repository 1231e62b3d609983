# The commands the README gives. `make test` is exactly what CI runs (.ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install run test test-live lint package bench bench-huge fuzz clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## run: local S3 + bucket + `chalice local` on http://127.0.0.1:8000 (Ctrl-C stops all)
run: install
	$(BIN)/python -m devstack $(RUN_ARGS)

## lint: ruff (lint and format check) and strict mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: lint, then unit, route, end-to-end and packaging tests
test: lint
	$(BIN)/pytest

## bench: benchmarks (signing, load, upload throughput), each side by side in one run
bench: install
	$(BIN)/python -m bench.signing
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.upload_throughput

## bench-huge: 6 GiB through the CLI, killed and resumed (needs S3_ENDPOINT: an S3 on disk)
bench-huge: install
	@test -n "$(S3_ENDPOINT)" || { echo "set S3_ENDPOINT, e.g. a local LocalStack or MinIO"; exit 2; }
	$(BIN)/python -m bench.huge_upload --s3-endpoint $(S3_ENDPOINT)

## fuzz: a longer schemathesis run than CI's, with a random seed
fuzz: install
	FUZZ_MAX_EXAMPLES=300 FUZZ_SEED=random $(BIN)/pytest -ra tests/e2e/test_fuzz.py

## package: the stage's CloudFormation (SAM) template and zip in build/<stage>/
STAGE ?= prod
package: install
	$(BIN)/python -m infra.package --stage $(STAGE) build/$(STAGE)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

## test-live: the signature tier against a strict S3 (real AWS, or LIVE_S3_ENDPOINT)
test-live: install
	@test -n "$(LIVE_S3_BUCKET)" || { echo "set LIVE_S3_BUCKET (and LIVE_S3_ENDPOINT for a local strict S3)"; exit 2; }
	LIVE_S3_BUCKET=$(LIVE_S3_BUCKET) LIVE_S3_ENDPOINT=$(LIVE_S3_ENDPOINT) $(BIN)/pytest -ra tests/live
