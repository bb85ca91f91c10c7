# Pearls: the two commands a newcomer needs are `make run` and `make test`.
# Everything they need is installed by the targets below (see README.md).

SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PYTEST_ARGS ?=
# uv runs everything on an interpreter with the CVE-2024-6923 fix (see deploy/python.sh).
export UV_PYTHON = $(shell bash deploy/python.sh 2>/dev/null)

.PHONY: help setup run run-system test lint typecheck imports schemas pytest testcontainers infra bench faults clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'
	@echo '  options of make run: DEMO=0 (no demo), RUN_ARGS="--workdir DIR --mail-port N ..."'
	@echo '                       (pearls-demo --help lists them)'

setup: ## Install Python dependencies (uv) and the Kafka broker's jars (Maven)
	@bash deploy/setup.sh

# make run DEMO=0 starts the system without the demo; RUN_ARGS passes options to
# pearls-demo (e.g. RUN_ARGS="--workdir /tmp/pearls --mail-port 8025"; see pearls-demo --help).
DEMO ?= 1
RUN_ARGS ?=

run: setup ## The whole system locally, with the demo (DEMO=0: without); Ctrl-C stops it
	@$(UV) run --locked pearls-demo $(if $(filter 0 no false,$(DEMO)),--no-demo) $(RUN_ARGS)

run-system: setup ## The whole system locally, without the demo (same as make run DEMO=0)
	@$(UV) run --locked pearls-demo --no-demo $(RUN_ARGS)

# The tests run beside a Docker engine (started for the run and stopped after it when
# none answers, deploy/docker.sh) with the local images built: the main stage (Kafka and
# PostgreSQL from the local launchers; the compose system in tests/containers), then the
# testcontainers stage (the same integration tests on containers of the local images).
test: setup lint ## Lint, type checks, import contract, schema check and all tests
	@bash deploy/docker.sh run $(MAKE) --no-print-directory pytest testcontainers

lint: typecheck imports schemas ## Static checks
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .

typecheck:
	$(UV) run --locked mypy shared/src deploy/local/src deploy/demo/src deploy/ops/src services/*/src

imports: ## No service imports another service's code
	$(UV) run --locked lint-imports

schemas: ## Contracts are current: event schemas (backward compatible), AsyncAPI, OpenAPI, settings table
	$(UV) run --locked pearls-schemas check

PEARLS_INFRA_SOURCE ?= local
TESTCONTAINERS_TESTS ?= tests/backbone tests/flows tests/containers/test_testcontainers.py \
	shared/tests/integration services/applications/tests/integration \
	services/mentoring/tests/integration services/awards/tests/integration \
	services/notifications/tests/integration

pytest: ## The main test stage (make test runs it beside a Docker engine)
	PEARLS_INFRA_SOURCE=$(PEARLS_INFRA_SOURCE) $(UV) run --locked pytest $(PYTEST_ARGS)

testcontainers: ## The testcontainers stage: integration tests on containers of the local images
	@set -a && . deploy/images/images.env && set +a && \
	export PEARLS_INFRA_SOURCE=docker PEARLS_KAFKA_IMAGE=$${PEARLS_KAFKA_IMAGE:-$$KAFKA_IMAGE} \
	  PEARLS_POSTGRES_IMAGE=$${PEARLS_POSTGRES_IMAGE:-$$POSTGRES_IMAGE} && \
	echo "testcontainers stage: $$PEARLS_KAFKA_IMAGE, $$PEARLS_POSTGRES_IMAGE" && \
	$(UV) run --locked pytest $(TESTCONTAINERS_TESTS) $(PYTEST_ARGS)

# make bench QUICK=1: a smoke run at tiny sizes; BENCH_ARGS passes options to bench/run.py
# (e.g. BENCH_ARGS="--only relay,matching --profile --note 'quiet machine'").
QUICK ?=
BENCH_ARGS ?=

bench: setup ## Benchmarks: Kafka limit, consumer, relay, end to end, matching (bench/results/)
	$(UV) run --locked python bench/run.py $(if $(filter 1 yes true,$(QUICK)),--quick) $(BENCH_ARGS)

faults: setup ## The full fault campaign (kills, outages, poison; README "Fault campaign")
	$(UV) run --locked pytest tests/faults -m faults_full $(PYTEST_ARGS)

infra: setup ## Only Kafka and PostgreSQL, in the foreground
	@$(UV) run --locked pearls-infra up

clean: ## Remove caches and local state (not the virtualenv)
	rm -rf .cache/run .pytest_cache .mypy_cache .ruff_cache

.PHONY: deploy-check
deploy-check: setup ## Only the deployment files' checks (compose, Dockerfile, Helm chart)
	$(UV) run --locked pytest tests/deploy
