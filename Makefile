# make docs   build the documentation into docs/_build/html
# make check  install what is needed, then run every test (on the default Python with the newest
#             Sphinx, and on Python 3.9 with Sphinx 5.3: QEMU's floor), the registry check, the
#             compatibility gate, warnings-as-errors docs builds on both, the packaging checks, and
#             that no merge-conflict marker is left in a tracked file
# make bench  benchmarks (see bench/)
# make fuzz   the fuzz test (run briefly by make check) with many more examples and fresh seeds
# make qemu-releases  QEMU 10.0.2 from Debian's bookworm-backports into the cache, beside the
#             system's QEMU: the real-QEMU tests then run against both (ci/fetch-qemu)

PYTHON ?= python3
# The oldest Python and Sphinx this package supports, what QEMU's docs build uses: the whole
# suite runs there too.  ci/find-python looks on PATH and under pyenv.
PYTHON_OLDEST ?= $(shell ci/find-python 3.9)
VENV := .venv
BIN := $(VENV)/bin
OLDEST := .venv-oldest
STAMP := .installed
PYTEST_ARGS ?=
FUZZ_EXAMPLES ?= 3000
# setuptools tells every editable install of a package whose folders are mapped (interfaces/ is
# installed as sphinxext_qemudbus.interfaces) that folders named like the package may shadow it:
# a 10-line "BuildBackendWarning: Editable installation." that says nothing about this project.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: all docs check conflicts lint test test-oldest registry compat docs-strict docs-oldest package bench fuzz compare-qemu qemu-releases clean

all: check

$(VENV)/$(STAMP): pyproject.toml ci/constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(EDITABLE) $(BIN)/python -m pip install --quiet -e '.[test,lint]' -c ci/constraints-dev.txt
	touch $@

$(OLDEST)/$(STAMP): pyproject.toml ci/sphinx-oldest.txt
	@test -n "$(PYTHON_OLDEST)" || { echo "make: no Python 3.9 for $(OLDEST) (see ci/find-python)"; exit 2; }
	$(PYTHON_OLDEST) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(EDITABLE) $(OLDEST)/bin/python -m pip install --quiet -e '.[test]' -c ci/sphinx-oldest.txt
	touch $@

docs: $(VENV)/$(STAMP)
	$(BIN)/sphinx-build -b html -n --keep-going docs docs/_build/html
	@echo "Open docs/_build/html/index.html"

check: conflicts lint test test-oldest registry compat docs-strict docs-oldest package

# No merge-conflict marker left in a tracked file (a lone ======= reads as a reST adornment, so
# the docs build alone does not notice one).
conflicts: $(VENV)/$(STAMP)
	$(BIN)/python ci/check_conflict_markers.py

lint: $(VENV)/$(STAMP)
	$(BIN)/ruff check sphinxext_qemudbus tests bench ci
	$(BIN)/ruff format --check sphinxext_qemudbus tests bench ci
	$(BIN)/mypy

test: $(VENV)/$(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole suite again on Python 3.9 with Sphinx 5.3, what QEMU builds its docs with (Sphinx
# 5.3's own deprecation warnings aside).
test-oldest: $(OLDEST)/$(STAMP)
	$(OLDEST)/bin/python -m pytest -q -W ignore::DeprecationWarning -W ignore::PendingDeprecationWarning $(PYTEST_ARGS)

registry: $(VENV)/$(STAMP)
	$(BIN)/qemu-dbus check --strict interfaces/

compat: $(VENV)/$(STAMP)
	$(BIN)/qemu-dbus diff --baseline-file ci/compat-baseline interfaces/

docs-strict: $(VENV)/$(STAMP)
	rm -rf docs/_build/strict
	$(BIN)/sphinx-build -b html -W -n --keep-going -q docs docs/_build/strict

docs-oldest: $(OLDEST)/$(STAMP)
	rm -rf docs/_build/oldest
	$(OLDEST)/bin/sphinx-build -b html -W -n --keep-going -q docs docs/_build/oldest

# The sdist and the wheel as a user gets them: contents, then the wheel in a fresh venv used from
# a folder outside the repository (ci/check_package.py says what it proves).
package: $(VENV)/$(STAMP)
	$(BIN)/python ci/check_package.py --python $(PYTHON) --python $(PYTHON_OLDEST)

bench: $(VENV)/$(STAMP) $(OLDEST)/$(STAMP)
	$(BIN)/python bench/run.py

fuzz: $(VENV)/$(STAMP)
	QEMU_DBUS_HYPOTHESIS=explore QEMU_DBUS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz.py

# The QEMU releases the real-QEMU tests run against besides the system's (Debian 12: 7.2): 10.0.2
# from bookworm-backports, unpacked into ${XDG_CACHE_HOME:-~/.cache}/qemu-dbus/qemu-10.0.2/ for
# every checkout to share.  Neither the system's apt sources nor its QEMU are touched.
qemu-releases:
	ci/fetch-qemu

# Compare the registry with a QEMU source tree: make compare-qemu QEMU=~/src/qemu
# Expect documentation notes only; any other line is a difference to re-sync (interfaces/SOURCES.md).
compare-qemu: $(VENV)/$(STAMP)
	@test -n "$(QEMU)" || { echo "usage: make compare-qemu QEMU=/path/to/qemu"; exit 2; }
	rm -rf build/qemu-xml && mkdir -p build/qemu-xml
	cp $(QEMU)/ui/dbus-display1.xml $(QEMU)/backends/dbus-vmstate1.xml build/qemu-xml/
	-cp $(QEMU)/tools/qemu-vnc/*.xml build/qemu-xml/ 2>/dev/null
	$(BIN)/qemu-dbus diff build/qemu-xml interfaces/

clean:
	rm -rf docs/_build build *.egg-info .pytest_cache .mypy_cache .ruff_cache
