# moodle_ha: the two commands are `make demo` and `make test` (see README).
# Lab options: RELEASE=bookworm|trixie (default trixie), PILLAR=FILE (topology source, default
# pillar.example), MOODLE_ARCHIVE=/path/moodle.tgz (default: the fixture app), HOST=name.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
LAB     = $(PY) test/lab/lab.py
# pip's whole output (warnings about this machine's pip config included) goes to a log file;
# a failure shows its tail.
PIP_LOG = $(VENV)/pip.log
PIP     = pip() { $(VENV)/bin/pip install --progress-bar off "$$@" >>$(PIP_LOG) 2>&1 || \
            { tail -n 20 $(PIP_LOG); echo "pip install failed; full output: $(PIP_LOG)"; exit 1; }; }; pip
LABENV  = $(if $(RELEASE),MOODLE_HA_LAB_RELEASE=$(RELEASE)) $(if $(PILLAR),MOODLE_HA_LAB_PILLAR=$(PILLAR))

.PHONY: venv test test-static test-matrix test-garbd test-scale demo deploy info shell status add down bench bench-throughput bench-cachestores bench-upgrade

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@echo "==> venv $(VENV) (pip log: $(PIP_LOG))"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(VENV)/.installed

## Unit, render and lint tests, then the lab integration suite (brings the lab up and down):
## the whole suite on Debian 13, then the arbitrator topology and a web node added to it; or
## the whole suite on $(RELEASE) / $MOODLE_HA_LAB_RELEASE only when set.
test: venv
	@$(LABENV) bash test/run.sh

## Unit, render and lint tests only (no lab).
test-static: venv
	@bash test/run.sh --no-lab

## What `make test` runs, then the arbitrator topology (test-garbd) and the whole lab suite on
## Debian 12 (bookworm).
test-matrix: venv
	@bash test/run.sh --matrix

## The arbitrator topology (two galera nodes, garbd on lb1, Galera over TLS:
## test/lab/topologies/garbd.yaml) on its own lab: converge, re-run, kill either galera host,
## TLS on every voter and an SST over TLS; then scale out by one web node.
test-garbd: venv
	@MOODLE_HA_LAB_PILLAR=test/lab/topologies/garbd.yaml $(VENV)/bin/pytest -m lab -rP \
	  test/integration/test_garbd.py test/integration/test_galera_tls.py \
	  test/integration/test_scale.py

## A whole app node (moodle4) and an arbitrator (arb1) added to the default lab and taken out
## again under load (test_scale_app_node.py, ~12 min; out of `make test` for CI's time budget).
test-scale: venv
	@MOODLE_HA_LAB_SCALE=1 $(VENV)/bin/pytest -m lab -rP test/integration/test_scale_app_node.py

## Bring up the five-host lab and deploy the whole cluster with moodle_ha.orch
## (make demo RELEASE=bookworm, make demo MOODLE_ARCHIVE=/path/moodle.tgz).
demo: venv
	@$(LABENV) $(LAB) up $(if $(MOODLE_ARCHIVE),--moodle-archive $(MOODLE_ARCHIVE))
	@$(LAB) deploy

## Run moodle_ha.orch again on the running lab.
deploy: venv
	@$(LAB) deploy

## URL, admin login and the other ways into the running lab.
info: venv
	@$(LAB) info

## A shell on a lab host: make shell HOST=lb1 (default moodle1).
shell: venv
	@$(LAB) exec $(or $(HOST),moodle1)

status: venv
	@$(LAB) status

## Boot hosts into the running lab: make add HOST="moodle4 arb1" PILLAR=FILE (FILE: the
## lab's topology plus those hosts), then `make deploy`.
add: venv
	@$(LAB) add $(HOST) --pillar $(PILLAR)

down: venv
	@$(LAB) down

## One table of figures on the deployed lab: no-op re-run, failovers, login pages/s, a backup,
## the upgrade window (make bench JSON=bench.json BENCH_ARGS=--cold; docs/benchmarks.md).
bench: venv
	@$(PY) test/bench/bench.py $(if $(JSON),--json $(JSON)) $(BENCH_ARGS)

## Requests/s of the cluster against a standalone Moodle built on one more lab host from the
## same archive (needs a deployed lab, best with a real Moodle: make demo MOODLE_ARCHIVE=...;
## figures and method in docs/benchmarks.md).
bench-throughput: venv
	@$(PY) test/bench/throughput.py

## Moodle's application caches in the file store on the shared volume against Redis, through
## the VIP (needs a lab with role redis: make demo PILLAR=test/lab/topologies/redis.yaml
## MOODLE_ARCHIVE=...; figures in docs/benchmarks.md).
bench-cachestores: venv
	@$(PY) test/bench/cachestores.py

## The upgrade window: the next release of what the lab serves (fixture or real Moodle
## archive, version.php raised) deployed with moodle_ha.orch under a polling client; the
## lab stays on it (figures in docs/benchmarks.md).
bench-upgrade: venv
	@$(PY) test/bench/upgrade.py
