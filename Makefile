# Two commands set up a fresh machine: `make reproduce` and `make test`. Both install first,
# and skip the install when requirements.lock and pyproject.toml have not changed.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# The machine's pip config lists local mirrors that lack most packages; pip warns once per package.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
LOCK_HASH := $(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
CORES ?= all
PYTEST_ARGS ?=

.PHONY: install test reproduce decide smoke paper-mini check check-avx2 accept-baselines push pull bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@echo ">> installing ticketbench into $(VENV) (pinned by requirements.lock)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { $(QUIET_PIP); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { $(QUIET_PIP); }
	rm -f $(VENV)/.installed-*
	touch $@

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

RUN := HF_HUB_OFFLINE=1 PATH="$(abspath $(BIN)):$$PATH"

# Where and how the grids run (docs/cluster.md "On a SLURM cluster"): PROFILE=slurm submits every model job through
# workflow/profiles/slurm, CONFIGS="my-site.yaml ..." layers config files last (partition, account, data roots),
# SNAKEMAKE_FLAGS passes anything else to Snakemake.
PROFILE ?=
CONFIGS ?=
SNAKEMAKE_FLAGS ?=
SNAKEMAKE := $(RUN) $(BIN)/snakemake --cores $(CORES) --rerun-incomplete $(if $(PROFILE),--profile workflow/profiles/$(PROFILE))
CHECK_CONFIG := $(RUN) $(BIN)/ticketbench check-config --config config/config.yaml

# check-config first: Snakemake reports a malformed --configfile without naming it; this names file and line.
reproduce: install
	$(CHECK_CONFIG) $(foreach f,$(CONFIGS),--config $(f))
	$(SNAKEMAKE) $(if $(CONFIGS),--configfile $(CONFIGS)) $(SNAKEMAKE_FLAGS)

# Seeds where they decide (docs/statistics.md "Seeds needed, and adding them"): reads the report's undecided claims,
# adds seeds to their cells through the same rules (a config overlay), looks again, within BUDGET (90s, 60m, 1.5h);
# LOOKS fixes the most looks at the data (every verdict is then made at 1 - 0.05/LOOKS).
BUDGET ?= 60m
LOOKS ?= 3
decide: install
	$(RUN) $(BIN)/ticketbench decide --budget "$(BUDGET)" --looks "$(LOOKS)" $(if $(filter-out all,$(CORES)),--cores "$(CORES)") \
		$(foreach f,$(CONFIGS),--configfile "$(f)")

smoke: install
	$(CHECK_CONFIG) --config config/smoke.yaml $(foreach f,$(CONFIGS),--config $(f))
	$(SNAKEMAKE) --configfile config/smoke.yaml $(CONFIGS) $(SNAKEMAKE_FLAGS)

# The paper grid in miniature (docs/pipeline.md "The paper grid in miniature"): generated replicas of the four datasets in
# their real formats, then every job kind, dataset format and backbone of config/paper.yaml, in minutes on a laptop.
# A lab runs it on its cluster before the paper grid: make paper-mini PROFILE=slurm CONFIGS=site.yaml.
PAPER_MINI := config/paper.yaml config/paper-mini.yaml
paper-mini: install
	$(RUN) $(BIN)/ticketbench fake-data --out data/paper-mini
	$(CHECK_CONFIG) $(foreach f,$(PAPER_MINI) $(CONFIGS),--config $(f))
	$(SNAKEMAKE) --configfile $(PAPER_MINI) $(CONFIGS) $(SNAKEMAKE_FLAGS)

# Share artifacts through the DVC remote (docs/sharing.md "Sharing artifacts with DVC"). push records what Snakemake produced (no
# re-run) and uploads it: every grid whose results exist, or GRID=<stage of dvc.yaml> alone. pull fetches one grid
# (GRID=grid: the default or paper grid in results/; GRID=smoke), marks it up to date for Snakemake (checkout gives
# the files new timestamps) and rebuilds its summary and report without a single training job.
# REMOTE=<name> picks a remote other than the default; a failed transfer is one line and leaves the cache as it was.
# CONFIG=config/paper.yaml: the grid in results/ is the paper grid (CONFIGS: more files, e.g. a site file).
# --allowed-rules makes "no training job" a guarantee: a run that would need one stops instead.
GRID ?= grid
REMOTE ?=
CONFIG ?=
GRID_CONFIG_grid :=
GRID_CONFIG_smoke := config/smoke.yaml
PULL_FILES := $(strip $(GRID_CONFIG_$(GRID)) $(CONFIG) $(CONFIGS))
PULL_CONFIG := $(if $(PULL_FILES),--configfile $(PULL_FILES))
SHARE_FLAGS := $(if $(REMOTE),--remote $(REMOTE))

push: install
	$(RUN) $(BIN)/ticketbench share push $(if $(filter command line,$(origin GRID)),--stage $(GRID)) $(SHARE_FLAGS)

pull: install
	$(CHECK_CONFIG) --no-data $(foreach f,$(PULL_FILES),--config $(f))
	$(RUN) $(BIN)/ticketbench share pull --stage "$(GRID)" $(SHARE_FLAGS)
	$(RUN) TICKETBENCH_CHECK_DATA=0 $(BIN)/snakemake --cores 1 --touch $(PULL_CONFIG)
	$(RUN) TICKETBENCH_CHECK_DATA=0 $(BIN)/snakemake --cores 1 --forcerun evaluate --allowed-rules evaluate report all \
		$(PULL_CONFIG)

# Speed and memory targets: ratios against a dense baseline timed in the same run.
bench: install
	mkdir -p results/bench
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests/benchmarks --benchmark-enable --benchmark-only \
		--benchmark-json results/bench/benchmarks.json
	$(BIN)/ticketbench bench-summary --json results/bench/benchmarks.json --out results/bench/summary.md

# CPU kernel paths: each steps the ATen and oneDNN dispatch down to an older instruction set, which changes the
# last bits of every convolution the way another machine would. `native` is whatever this CPU offers.
KERNELS_native :=
KERNELS_avx2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
KERNELS_default := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41

# Accuracy regression: the smoke grid's seed means against tests/baselines/smoke.json (rule in docs/statistics.md).
check: smoke
	$(BIN)/ticketbench check --results results/smoke --baselines tests/baselines/smoke.json --configfile config/smoke.yaml

# The same gate on an emulated older CPU: the smoke grid under the AVX2 kernel path.
check-avx2: install
	$(RUN) $(KERNELS_avx2) $(BIN)/snakemake evaluate --cores $(CORES) --rerun-incomplete \
		--configfile config/smoke.yaml --config results=results/smoke-avx2
	$(BIN)/ticketbench check --results results/smoke-avx2 --baselines tests/baselines/smoke.json --configfile config/smoke.yaml

# Re-pin the baselines on purpose: 4 seeds under each of the three kernel paths; the file records the mean and
# spread of every metric over those 12 runs.
PIN_PATHS := native avx2 default
accept-baselines: install
	$(foreach k,$(PIN_PATHS),$(RUN) $(KERNELS_$(k)) $(BIN)/snakemake evaluate --cores $(CORES) --rerun-incomplete \
		--configfile config/smoke.yaml config/smoke-pin.yaml --config results=results/pin-$(k) &&) true
	$(BIN)/ticketbench check --accept --baselines tests/baselines/smoke.json $(foreach k,$(PIN_PATHS),--results results/pin-$(k))

# Re-resolve the lock from pyproject.toml's direct dependencies in a scratch environment.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet .
	{ head -3 requirements.lock; .lock-venv/bin/python -m pip freeze --all | grep -v -E '^(pip|ticketbench)(==| @)' | sort -f; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .snakemake
