# scaleup_analysis — every target creates .venv/ from the lock files when missing or stale.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help env env-dev report test test-matrix docs bench lab lock clean-venv reference notebooks

# Other supported Pythons (make test-matrix): each gets .venv-pyXY/ from requirements-dev-pyXY.lock.
# The interpreter is found with pyenv (`pyenv prefix 3.12`), else python3.12 on the PATH; override
# with e.g. `make test-matrix PYTHON312=/path/to/python3.12`.
MATRIX := 312 313

help:
	@echo "make report  - build the embedded dataset (if absent), validate it, run the notebooks into reports/"
	@echo "make test    - run the whole test suite (unit, doctests, reference tests, nbval notebooks, docs build)"
	@echo "make test-matrix - unit tests and doctests on Python 3.12 and 3.13 (.venv-py312/, .venv-py313/)"
	@echo "make docs    - build the documentation site into docs/_build/html (warnings are errors)"
	@echo "make bench   - run the benchmarks and write benchmarks/results.md"
	@echo "make lab     - open JupyterLab on notebooks/"
	@echo "make lock    - re-resolve the lock files from pyproject.toml (needs PyPI; installs uv in .venv)"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=68" wheel

# The stamp files are newer than the lock and pyproject when the environment is up to date.
$(VENV)/.stamp-core: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.stamp-dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(VENV)/.stamp-core $@

env: $(VENV)/.stamp-core
env-dev: $(VENV)/.stamp-dev

# The embedded default study is written once into data/raw (with its MANIFEST and study.toml), then
# reported on like any team's study folder; data/raw is never written again. The summaries of its
# patient-level table go to data/processed (reused by the next run while data/raw is unchanged).
report: $(VENV)/.stamp-core
	@test -f data/raw/MANIFEST || $(BIN)/scaleup simulate --out data/raw
	$(BIN)/scaleup report --data data/raw --out reports --processed data/processed

test: $(VENV)/.stamp-dev
	MPLBACKEND=Agg $(BIN)/python -m pytest -n 2 --dist loadgroup tests scaleup_analysis
	$(BIN)/python -m pytest --nbval -p no:randomly notebooks
	$(MAKE) --no-print-directory docs

# The documentation site (Sphinx): the API reference from the docstrings of every public name, the
# Markdown pages of docs/, the validation page computed by docs/scripts/validation.py from the
# reference tests, and the step notebooks rendered from their stored outputs (never executed).
# Warnings are errors (-W).
docs: $(VENV)/.stamp-dev
	rm -rf docs/_build docs/_generated
	MPLBACKEND=Agg $(BIN)/python docs/scripts/validation.py --out docs/_generated/validation.md
	MPLBACKEND=Agg $(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "documentation: docs/_build/html/index.html"

# Unit tests and doctests on every other supported Python, each in its own venv from its own lock.
test-matrix:
	@failed=""; for v in $(MATRIX); do \
	  echo "== Python $$v"; \
	  $(MAKE) --no-print-directory test-py$$v || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-matrix: FAILED on Python$$failed"; exit 1; fi; \
	echo "test-matrix: passed on $(MATRIX)"

test-py%: .venv-py%/.stamp
	MPLBACKEND=Agg .venv-py$*/bin/python -m pytest -n 2 --dist loadgroup -q tests scaleup_analysis

# the venvs are kept between runs (make would otherwise delete a pattern rule's intermediate stamp)
.PRECIOUS: .venv-py%/.stamp
.venv-py%/.stamp: requirements-dev-py%.lock pyproject.toml
	@pv=$$(echo $* | sed 's/^3/3./'); py="$(PYTHON$*)"; \
	if [ -z "$$py" ] && command -v pyenv >/dev/null 2>&1 && pyenv prefix $$pv >/dev/null 2>&1; then \
	  py="$$(pyenv prefix $$pv)/bin/python$$pv"; fi; \
	if [ -z "$$py" ]; then py=python$$pv; fi; \
	if ! "$$py" -c 'import sys; assert sys.version_info[:2] == tuple(map(int, "'$$pv'".split(".")))' >/dev/null 2>&1; then \
	  echo "error: Python $$pv not found (tried pyenv and python$$pv on the PATH)."; \
	  echo "  Install it with pyenv: 'pyenv install $$pv' (see CONTRIBUTING.md, 'Other Python versions'),"; \
	  echo "  or point to one: 'make test-matrix PYTHON$*=/path/to/python$$pv'."; \
	  exit 1; fi; \
	echo "creating .venv-py$* with $$py"; \
	rm -rf .venv-py$* && "$$py" -m venv .venv-py$* && \
	.venv-py$*/bin/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=68" wheel && \
	.venv-py$*/bin/python -m pip install --quiet -r requirements-dev-py$*.lock && \
	.venv-py$*/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . && \
	touch $@

bench: $(VENV)/.stamp-dev
	MPLBACKEND=Agg $(BIN)/python benchmarks/run.py

lab: $(VENV)/.stamp-core
	$(BIN)/jupyter lab notebooks

# Reference values from R (needs Rscript with metafor, lme4, lmerTest, psych); CI does not need R.
reference:
	cd tests/reference && Rscript make_reference.R

# uv keeps the versions already pinned in each lock unless pyproject.toml asks otherwise; the locks of
# the other Pythons start from the 3.11 pins, so every version runs the same libraries where it can.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile --quiet pyproject.toml --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --extra docs --python-version 3.11 -o requirements-dev.lock
	for v in $(MATRIX); do \
	  test -f requirements-dev-py$$v.lock || cp requirements-dev.lock requirements-dev-py$$v.lock; \
	  $(BIN)/uv pip compile --quiet pyproject.toml --extra dev --extra docs \
	    --python-version $$(echo $$v | sed 's/^3/3./') -o requirements-dev-py$$v.lock || exit 1; \
	done

clean-venv:
	rm -rf $(VENV) $(foreach v,$(MATRIX),.venv-py$(v))

# Re-build each step notebook (shipped in scaleup_analysis/notebooks, linked as notebooks/) from its
# paired jupytext .py file and execute it on the embedded default study, storing fresh outputs and
# figures (nbval).
notebooks: $(VENV)/.stamp-dev
	cd scaleup_analysis/notebooks && for f in [0-9][0-9]_*.py; do \
	  nb="$${f%.py}.ipynb"; rm -f "$$nb"; \
	  ../../$(BIN)/jupytext --quiet --to notebook --set-formats ipynb,py:percent --output "$$nb" "$$f" && \
	  ../../$(BIN)/jupyter nbconvert --log-level=ERROR --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False --ExecutePreprocessor.extra_arguments="['--IPKernelApp.log_level=ERROR']" "$$nb" || exit 1; \
	done
