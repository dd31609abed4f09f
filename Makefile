# amogate developer commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint format demo bench mutate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

demo: $(STAMP)
	$(BIN)/amogate demo

# Benchmarks need wrk (Debian package); installed here when missing and allowed (root).
bench: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.run

# Mutation testing of the critical rules ([tool.mutmut] and [tool.amogate.mutation.rules] in
# pyproject.toml; docs/testing.md). Starts afresh; mutmut's progress goes to artifacts/mutmut.log.
# MUTATE_RULES="retry policy,error classification" runs only those rules.
MUTATE_JOBS ?= 2
MUTATE_RULES ?=
export MUTATE_RULES
mutate: $(STAMP)
	@set -f; targets="$$($(BIN)/python -m tools.mutation_report --targets)" || exit 1; \
	rm -rf mutants; mkdir -p artifacts; echo "mutmut run $$targets"; \
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $$targets > artifacts/mutmut.log 2>&1 || \
		{ tail -c 4000 artifacts/mutmut.log | tr '\r' '\n' | tail -n 30; exit 1; }
	$(BIN)/python -m tools.mutation_report

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
