"""mloops benchmarks: every figure a ratio against a baseline measured in the same run.

``python -m bench [--quick | --smoke] [--only NAME ...]`` (``make bench``) writes
``bench/results/results.json`` and ``bench/results/results.md``.
"""
