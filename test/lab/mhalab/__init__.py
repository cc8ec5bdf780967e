"""The moodle_ha lab (entry point: test/lab/lab.py; tests and benchmarks: mhalab.testkit)."""
