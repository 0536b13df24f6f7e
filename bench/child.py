"""Entry point of a measured child: ``python -m bench.child SPEC.json OUT.json``.

The spec names a case as ``module:function``; the function gets the spec's params and a
:class:`Probe`, and returns a JSON-able dict. The probe records named section timings and the RSS
right before the measured work, which the parent subtracts from the child's peak RSS.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def peak_rss_now() -> int:
    """This process's peak RSS so far (``VmHWM``), in bytes; 0 where ``/proc`` does not tell.

    Read in the child because the parent's ``wait4`` figure (``ru_maxrss``) is not this program's
    own peak on Linux: it carries over the RSS of the process that forked it (a 1.5 GB pytest
    parent makes every child report at least 1.5 GB).
    """
    import resource

    # Descendants this child reaped (an Airflow task process, say) count too; they started from this
    # child's RSS, which is at most its own peak.
    descendants = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return max(int(line.split()[1]) * 1024, descendants)
    return 0


def rss_now() -> int:
    """Current resident set size of this process, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


#: ``attribute`` of a spec that samples the whole child (see :class:`Probe`).
WHOLE_CHILD = "*"


class Probe:
    """What a case reports besides its result: section timings and the pre-work RSS."""

    def __init__(self, attribute: str | None = None) -> None:
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.rss_base: int | None = None
        self.marks: dict[str, int] = {}
        #: The section whose CPU time is sampled by library (:mod:`bench.attribution`), if the spec asks;
        #: ``"*"``: the whole child from here, its own code being the bench's (a baseline's plain script).
        self.attribute = attribute
        self.sampler: Any = None
        if attribute == WHOLE_CHILD:
            self._sample(owner="bench")

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Wall time (the figure) and CPU time of this process (all threads; steadier under load)."""
        sampled = name == self.attribute
        if sampled:
            self._sample()
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            if sampled:
                self.sampler.pause()
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - started
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu_started

    def _sample(self, owner: str = "mloops") -> None:
        """Start (or resume) the sampler of :mod:`bench.attribution`."""
        if self.sampler is None:
            from bench.attribution import Sampler

            self.sampler = Sampler(owner=owner)
        self.sampler.resume()

    def mark_base(self) -> None:
        """Call right before the measured work starts, after the imports the case needs."""
        self.rss_base = rss_now()

    def attribution(self) -> dict[str, Any] | None:
        """Stop the sampler (if the spec asked for one); what it booked."""
        if self.sampler is None:
            return None
        if self.attribute == WHOLE_CHILD:
            self.sampler.pause()
        return dict(self.sampler.close())

    def mark(self, name: str) -> None:
        self.marks[name] = rss_now()


def main(argv: list[str]) -> int:
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    module_name, function_name = spec["target"].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    probe = Probe(attribute=spec.get("attribute"))
    load_at_start = os.getloadavg()[0]
    result = function(spec["params"], probe)
    payload: dict[str, Any] = {
        "result": result,
        "times": probe.times,
        "cpu": probe.cpu,
        "rss_base": probe.rss_base,
        "marks": probe.marks,
        "attribution": probe.attribution(),
        "peak_rss": peak_rss_now(),
        "loadavg_1m": [load_at_start, os.getloadavg()[0]],
    }
    out_path.write_text(json.dumps(payload, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
