"""Isolation for hostile candidate programs: OS primitives, the warm worker process, the
child a candidate runs in, and the probes behind ``progressbench doctor``."""
