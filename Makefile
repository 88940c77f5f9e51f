# Arc: the two set-up commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
UV := uv
PYTEST_ARGS ?=

.PHONY: setup run stop status install test test-unit bench chaos load lint format talk talk-ws audit images compose-config k8s-validate

setup:
	@scripts/bootstrap.sh

run: setup
	@$(UV) run --frozen arc run

stop:
	@$(UV) run --frozen arc stop

status:
	@$(UV) run --frozen arc status

install: setup
	@$(UV) run --frozen arc install

# Coverage of our packages, in pytest and in every Python service the tests start
# (pyproject.toml [tool.coverage.*], docs/testing.md). The data file is absolute so that services
# started in other directories add to the same measurement.
COVERAGE_DIR := $(CURDIR)/.arc/coverage
test: setup
	@$(UV) run --frozen arc install
	@rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	@COVERAGE_FILE=$(COVERAGE_DIR)/.coverage $(UV) run --frozen pytest --cov \
		--cov-report=term:skip-covered --cov-report=html:$(COVERAGE_DIR)/html $(PYTEST_ARGS)

test-unit: setup
	@$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

bench: setup
	@$(UV) run --frozen python -m tests.bench

# The chaos suite (tests/chaos): a whole mesh of its own, each part failed mid-turn; writes
# the chaos section of docs/benchmarks.md (docs/testing.md).
chaos: setup
	@$(UV) run --frozen pytest -m chaos tests/chaos -s -p no:cacheprovider $(PYTEST_ARGS)

# The k6 load tests (tests/load) against a running `make run`; starts nothing. Writes
# docs/load.md. LOAD_ARGS="chat --vus 8" for one script, "--capacity 1,2,4,8" for a ramp.
LOAD_ARGS ?=
load: setup
	@$(UV) run --frozen python -m tests.load $(LOAD_ARGS)

# One turn through a real room from a file (needs `make run` in another terminal).
talk: setup
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "usage: make talk IN=question.wav OUT=reply.wav"; exit 2; }
	@eval "$$($(UV) run --frozen arc client-env)" && \
		$(UV) run --frozen python -m arc_voice.talk "$(IN)" "$(OUT)"

# The same turn over the WebSocket transport (docs/websocket.md), printing every event.
talk-ws: setup
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "usage: make talk-ws IN=question.wav OUT=reply.wav"; exit 2; }
	@eval "$$($(UV) run --frozen arc client-env)" && \
		$(UV) run --frozen python -m arc_voice.ws_client "$(IN)" "$(OUT)"

lint: setup
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen bandit -q -r services libs/python-sdk scripts -ll -x '*/node_modules/*'
	@$(UV) run --frozen arc audit

# The lock against the known vulnerabilities, failing unless every package was checked
# (where the vulnerability service is reachable: docs/security.md, "Supply chain").
audit: setup
	@$(UV) run --frozen arc audit --strict

format: setup
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

# Container images (docs/deployment.md): one per service and the local model's llama-server,
# tagged $(IMAGE_REGISTRY)/arc-<name>:$(IMAGE_TAG). Needs Docker with BuildKit and a daemon.
IMAGE_REGISTRY ?= arc
IMAGE_TAG ?= dev
IMAGE_SERVICES := brain:8081 tts:8082 events:8084 voice:8083

images:
	@docker info >/dev/null 2>&1 || { echo "make images needs a running Docker daemon (docs/deployment.md)"; exit 2; }
	@set -e; for entry in $(IMAGE_SERVICES); do \
		name=$${entry%%:*}; port=$${entry##*:}; \
		DOCKER_BUILDKIT=1 docker build -f deployments/docker/Dockerfile --target service \
			--build-arg SERVICE=$$name --build-arg HTTP_PORT=$$port \
			-t $(IMAGE_REGISTRY)/arc-$$name:$(IMAGE_TAG) . ; \
	done
	@DOCKER_BUILDKIT=1 docker build -f deployments/docker/Dockerfile --target llm \
		-t $(IMAGE_REGISTRY)/arc-llm:$(IMAGE_TAG) .

# Render every compose profile (development and production overlays) with docker-compose and
# check their secrets; render the Kubernetes base and overlays with kustomize and validate
# them against the Kubernetes schemas. Both install their tool first (a no-op once done).
compose-config: setup
	@$(UV) run --frozen python -m arc_stack.deploy_tools install
	@$(UV) run --frozen python -m arc_stack.deploy_tools compose-config

k8s-validate: setup
	@$(UV) run --frozen python -m arc_stack.deploy_tools install
	@$(UV) run --frozen python -m arc_stack.deploy_tools k8s-validate
