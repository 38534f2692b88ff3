# Routine commands. `make demo` and `make test` set everything up on a fresh machine
# (Python >= 3.11 is all they need): a virtual environment in .venv, then the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean docs check-server report-screenshot bench bench-registry

demo: $(VENV)/.installed
	$(BIN)/cohortflow demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) cohortflow-data .pytest_cache

docs: $(VENV)/.installed
	$(BIN)/python -c 'from pathlib import Path; from transforms.dictionary import write_data_dictionary as w; w(Path("docs/data_dictionary.md"))'

# A real Prefect server on loopback, `cohortflow serve`, triggered runs seen through the API.
check-server: $(VENV)/.installed
	$(BIN)/python scripts/check_prefect_server.py

# The last data-quality report of ./cohortflow-data rendered by headless Chromium (apt: chromium).
report-screenshot: $(VENV)/.installed
	$(BIN)/python scripts/screenshot_report.py cohortflow-data

# Benchmarks (not tests): the primary model's fit; a night (ingestion against raw DuckDB and
# pandas, views, data quality, models). Prints tables.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.lmm
	$(BIN)/python -m bench.ingest

# The night at registry scale: 1,000,000 patients in 500 centres (about 20 min, 3 GB).
bench-registry: $(VENV)/.installed
	$(BIN)/python -m bench.ingest --patients 1000000 --centres 500
