# The two commands of the README: `make up` (set up and run on embedded defaults) and `make test`.
.PHONY: up test setup worker lint bench

setup:
	@bash scripts/setup.sh

worker: setup
	@bash scripts/worker-env.sh

up: setup worker
	.venv/bin/interlock up

test: setup worker
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pytest -q -ra -n auto --maxprocesses 4

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	.venv/bin/python bench/gateway_overhead.py
