# Routine commands. `make demo` and `make test` set everything up on a fresh machine
# (Python >= 3.11 is all they need): a virtual environment in .venv, then the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast typecheck lint clean docs check-server check-packaging report-screenshot results-screenshot bench bench-registry

demo: $(VENV)/.installed
	$(BIN)/cohortflow demo

# Everything CI runs: the type checker, then every test with branch coverage (htmlcov/).
test: $(VENV)/.installed typecheck
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term:skip-covered --cov-report=html

# The inner loop: no end-to-end flow, no subprocess, no slow statistical fit (under 2 min).
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not e2e and not slow" -q

typecheck: $(VENV)/.installed
	$(BIN)/mypy

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# bytecode for our own modules, as a wheel install leaves it (an editable install does
	# not; with PYTHONDONTWRITEBYTECODE set, every command would compile them: 0.3 s a run)
	$(BIN)/python -m compileall -q -j 0 cohortflow flows models transforms schemas simulator
	touch $@

clean:
	rm -rf $(VENV) cohortflow-data .pytest_cache .coverage htmlcov .mypy_cache

docs: $(VENV)/.installed
	$(BIN)/python -c 'from pathlib import Path; from transforms.delivery.dictionary import write_data_dictionary as w; w(Path("docs/data_dictionary.md"))'

# A real Prefect server on loopback, `cohortflow serve`, triggered runs seen through the API.
check-server: $(VENV)/.installed
	$(BIN)/python scripts/check_prefect_server.py

# Build the wheel and an editable install in a throw-away venv; fail on any build warning.
check-packaging: $(VENV)/.installed
	$(BIN)/python scripts/check_packaging.py

# The last data-quality report of ./cohortflow-data rendered by headless Chromium (apt: chromium).
report-screenshot: $(VENV)/.installed
	$(BIN)/python scripts/screenshot_report.py cohortflow-data docs/quality-report.png --height 1100

# The last results report (reports/<run>/results.html) of ./cohortflow-data, its top part, as the
# README's screenshot (docs/results.png); run `make demo` first.
results-screenshot: $(VENV)/.installed
	$(BIN)/python scripts/screenshot_report.py cohortflow-data docs/results.png --page results.html --height 2700

# Benchmarks (not tests): the primary model's fit; a night (ingestion against raw DuckDB and
# pandas, views, data quality, models); the night through the CLI at 100,000 patients (full,
# nothing new, fit with nothing due, one file of one centre changed); the trajectory
# analysis's recovery of the simulator's groups (10 seeds x 2,000 patients) and its time at
# 100,000 and 1,000,000 patients. Prints tables.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.lmm
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.night --patients 100000 --centres 100
	$(BIN)/python -m bench.trajectory recovery
	$(BIN)/python -m bench.trajectory speed

# The night at registry scale: 1,000,000 patients in 500 centres (about 20 min, 3 GB).
bench-registry: $(VENV)/.installed
	$(BIN)/python -m bench.ingest --patients 1000000 --centres 500
	$(BIN)/python -m bench.night --patients 1000000 --centres 500
