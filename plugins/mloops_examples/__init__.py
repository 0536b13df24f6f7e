"""Example data for mloops: the ``churn`` and ``house_prices`` generators and their CLI.

Tooling, not runtime: only a model config with ``source.kind: generator`` imports this package (inside
its task), plus the demo, the tests and the benchmarks. ``python -m mloops_examples --help`` writes
partitions to files.
"""
