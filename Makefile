# DevPocket API: `make help` lists the targets.
# Needs only Python >= 3.11 and make; everything else is installed into $(VENV).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Extra arguments for test and bench: make test ARGS='-k login', make bench ARGS=--quick
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv install run serve test lint format typecheck workflow-lint security gates check \
	migrate openapi bench bench-smoke image image-test clean distclean

help: ## list the targets
	@echo 'Usage: make TARGET [ARGS=...] [PYTHON=python3.11]'
	@echo
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z -]*:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The virtualenv is (re)built only when pyproject.toml is newer than the stamp. Progress goes to
# stderr so that `make openapi > openapi.json` stays clean on a fresh clone.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "DevPocket needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)" >&2; $(PYTHON) -m venv $(VENV) >&2 \
		|| { echo "python3 -m venv failed (on Debian/Ubuntu: apt install python3-venv)" >&2; exit 1; }; }
	@echo "installing devpocket and its dev tools into $(VENV)" >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install devpocket with its dev tools (only when pyproject.toml changed)

install: $(STAMP) ## same as venv

run: $(STAMP) ## migrate, then serve on 127.0.0.1:8000 (HOST=, PORT=; SQLite in the data dir unless DATABASE_URL)
	$(BIN)/devpocket migrate
	$(BIN)/devpocket serve --host $(HOST) --port $(PORT)

serve: run ## same as run

test: $(STAMP) ## run the tests on SQLite, then on PostgreSQL + Redis when reachable (scripts/test)
	scripts/test $(ARGS)

lint: $(STAMP) ## check formatting and lint (ruff format --check, ruff check)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP) ## format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## type-check src and tests (mypy --strict, configured in pyproject.toml)
	$(BIN)/mypy

workflow-lint: $(STAMP) ## lint the GitHub Actions workflows (actionlint)
	$(BIN)/actionlint .github/workflows/*.yml

security: $(STAMP) ## bandit on src, pip-audit of the installed packages (reports/bandit.json, pip-audit.json)
	$(BIN)/python scripts/security.py

gates: $(STAMP) ## after make test: branch coverage >= 90 % over both backends, no test skipped
	$(BIN)/python scripts/gates.py

check: lint workflow-lint typecheck security test gates ## everything CI runs: lint, workflow-lint, typecheck, security, test, gates

migrate: $(STAMP) ## apply pending database migrations (DATABASE_URL or SQLite in the data dir)
	$(BIN)/devpocket migrate

openapi: $(STAMP) ## print the OpenAPI schema to stdout (make -s openapi > openapi.json)
	@$(BIN)/devpocket openapi

bench: $(STAMP) ## benchmark with wrk on SQLite and PostgreSQL + Redis, then SSH, AI, terminals, history, sync (ARGS=--quick: a smoke run)
	$(BIN)/python bench/run.py $(ARGS)
	$(BIN)/python bench/ssh.py $(filter --quick,$(ARGS))
	$(BIN)/python bench/ai.py $(filter --quick,$(ARGS))
	$(BIN)/python bench/terminal.py $(filter --quick,$(ARGS))
	$(BIN)/python bench/history.py $(filter --quick,$(ARGS))
	$(BIN)/python bench/sync.py $(filter --quick,$(ARGS))
	$(BIN)/python bench/marks.py

bench-smoke: $(STAMP) ## the CI smoke run, under a minute: wrk on both backends, SSH and AI, --quick
	$(BIN)/python bench/run.py --quick
	$(BIN)/python bench/ssh.py --quick
	$(BIN)/python bench/ai.py --quick

image: ## build the container image devpocket:ci with podman, as root (scripts/image build)
	scripts/image build

image-test: ## run the built image's entry point in a chroot as its user and check it (scripts/image test)
	scripts/image test

clean: ## remove reports, caches and build output (keeps .venv)
	rm -rf reports htmlcov build dist .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
	rm -rf src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
