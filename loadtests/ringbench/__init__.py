"""ringbench: the pieces of ringway's load-test harness (see loadtests/README.md)."""
