# moodle_ha: the two commands are `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
LAB     = $(PY) test/lab/lab.py

.PHONY: venv test test-static lab-test demo down status bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

venv: $(VENV)/.installed

## Unit, render and lint tests, then the lab integration suite (brings the lab up and down).
test: venv
	bash test/run.sh

## Unit, render and lint tests only (no lab).
test-static: venv
	bash test/run.sh --no-lab

## Bring up the five-host lab and deploy the whole cluster with moodle_ha.orch
## (the fixture app, or a real Moodle archive: make demo MOODLE_ARCHIVE=/path/moodle.tgz).
demo: venv
	$(LAB) up $(if $(MOODLE_ARCHIVE),--moodle-archive $(MOODLE_ARCHIVE))
	$(LAB) deploy

status: venv
	$(LAB) status

down: venv
	$(LAB) down

## Converge time, no-op re-run and failover figures (needs a deployed lab).
bench: venv
	$(PY) test/bench/bench.py
