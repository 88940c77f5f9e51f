# Arc: the two set-up commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
UV := uv
PYTEST_ARGS ?=

.PHONY: setup run stop status install test test-unit bench lint format talk

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

test: setup
	@$(UV) run --frozen arc install
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

test-unit: setup
	@$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

bench: setup
	@$(UV) run --frozen python -m tests.bench

# One turn through a real room from a file (needs `make run` in another terminal).
talk: setup
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "usage: make talk IN=question.wav OUT=reply.wav"; exit 2; }
	@$(UV) run --frozen python -m arc_voice.talk "$(IN)" "$(OUT)"

lint: setup
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy

format: setup
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .
