"""Benchmark scripts that print figures (never timed asserts); bench.common holds what they share.

Run them from the repository root as scripts (`python bench/load.py --quick`) or as modules
(`python -m bench.load --quick`); see bench/README.md.
"""
