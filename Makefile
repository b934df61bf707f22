# Two commands for a new machine: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean i18n bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The embedded default: trace on the bundled real Postfix logs, no Slack, no servers.
demo: $(STAMP)
	$(BIN)/mailtrace trace from-mixed@example.net 2026-11-28 --config config/demo.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Benchmarks (not tests): every scenario of the speed issue in one run (bench/run.py): data
# generated once into the temp directory, local sshds started and stopped by the bench, mailtrace
# printed next to its floor and the hand procedure with the targets. Sized for a 2-core machine
# (a few minutes); BENCH_MB, BENCH_DAY_MB and BENCH_RSS_MB make it bigger.
BENCH_MB ?= 128
BENCH_DAY_MB ?= 4
BENCH_RSS_MB ?= 512
bench: $(STAMP)
	$(BIN)/python bench/run.py --mb $(BENCH_MB) --day-mb $(BENCH_DAY_MB) --rss-mb $(BENCH_RSS_MB)

# Re-extract every translatable message into the template and merge it into each catalog
# (bot/locale/*/LC_MESSAGES/mailtrace.po); then list the msgids that still need a translation.
# New msgids arrive untranslated (no fuzzy guesses); entries the code no longer has are dropped.
i18n: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ --no-location --sort-output --no-wrap \
		--project mailtrace --version 0.1.0 -o bot/locale/mailtrace.pot .
	$(BIN)/pybabel -q update -i bot/locale/mailtrace.pot -d bot/locale -D mailtrace \
		--ignore-obsolete --no-fuzzy-matching --no-wrap
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_i18n.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
