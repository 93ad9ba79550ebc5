# ShelfSense: `make run` starts the platform with a demo store; `make test` runs the suite.
# With DATABASE_URL / REDIS_URL unset, both start embedded PostgreSQL and Redis under .data/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS_HASH := $(shell cat requirements/*.txt | sha1sum | cut -c1-12)
INSTALLED := $(VENV)/.installed-$(REQUIREMENTS_HASH)
# Exports DATABASE_URL / REDIS_URL from the embedded services for whichever is unset.
SERVICES := source deploy/local/services-env.sh

.PHONY: install run test lint format bench services-up services-down clean-data

install: $(INSTALLED)

$(INSTALLED): requirements/base.txt requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

run: install
	@$(SERVICES); \
	export DJANGO_SETTINGS_MODULE=config.settings.local; \
	$(PY) manage.py setup_platform --verbosity 0; \
	$(PY) manage.py bootstrap_local; \
	$(PY) manage.py seed_demo --if-empty; \
	services_file="$${LOCAL_SERVICES_FILE:-.data/services.env}"; \
	echo "PUBLIC_PORT=$${PUBLIC_PORT:-$${WEB_PORT:-8000}}" > "$$(dirname "$$services_file")/run.env"; \
	exec $(VENV)/bin/honcho --procfile deploy/local/Procfile --app-root . start

test: install
	@$(SERVICES); \
	$(VENV)/bin/pytest --ds=config.settings.test $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	@$(SERVICES); \
	for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script; done

services-up: install
	$(PY) deploy/local/services.py up >/dev/null
	$(PY) deploy/local/services.py status

services-down:
	$(PY) deploy/local/services.py down

clean-data: services-down
	rm -rf .data
