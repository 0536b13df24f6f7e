"""Where a measured run's CPU time goes: mloops' own code, or which library mloops called.

A budget that is not met must show that the time left is inside a library (issue 16). A sampling
profiler answers that without the distortion of a tracing one (cProfile doubles the cost of the
many small calls of Airflow's and GX's Python code): a daemon thread wakes every ``interval``
seconds, reads the stack of each Python thread and the CPU time that thread used since the previous
sample (its own CPU clock, ``pthread_getcpuclockid``), and books that CPU time to a bucket:

* ``mloops``: the innermost mloops frame is the running one (mloops' own Python), or it is in the
  standard library on mloops' behalf (``json``, ``hashlib``, ``copy``: work mloops chose to do);
* ``imports``: mloops is importing a module (a lazy import inside a stage);
* ``<library>``: the frame called by the innermost mloops frame belongs to that top-level package
  (``great_expectations``, ``evidently``, ``mlflow``, ``sklearn``, ``pandas``, ...): all the time
  under that call, whatever the library itself called, is the library's;
* ``outside mloops: <package>``: no mloops frame on the stack; the package is the outermost one
  below the bench's own frames (``airflow`` for ``dag.test``'s machinery, its API and its DB).

The sampler needs the GIL: a sample lands where the measured thread releases it (every few
milliseconds in Python code, at once at a system call), so the CPU time of pure-Python work between
system calls is booked to the call's stack; library calls that run in C book precisely.

Every 20 ms by default: sampling every 5 ms slowed a sampled repeat of the DAG parse and of the
1M-row pipeline by 5-7 % (each sample takes the GIL and walks every thread's stack).

Weighting by each thread's CPU clock makes waits (a lock, a socket, ``sleep``) weigh nothing, so the
shares add up to the CPU seconds the budgets judge. Every Python thread is sampled; native threads
(OpenMP, BLAS: one in the bench) are what the process's CPU time exceeds the booked total by.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from types import FrameType
from typing import Any

OWN = "mloops"
#: Packages of the bench and the interpreter's start-up: never the "owner" of work outside mloops.
HARNESS = frozenset({"bench", "runpy", "__main__", "threading", "importlib", "contextlib"})
IMPORTS = "imports"


def _package(frame: FrameType) -> str:
    name = frame.f_globals.get("__name__") or ""
    top = name.split(".", 1)[0]
    if top in ("_frozen_importlib", "_frozen_importlib_external"):
        return "importlib"
    return top


def _stack(frame: FrameType | None) -> list[str]:
    """Top-level packages of the frames, outermost first."""
    packages: list[str] = []
    while frame is not None:
        packages.append(_package(frame))
        frame = frame.f_back
    packages.reverse()
    return packages


def bucket(packages: list[str], owner: str = OWN) -> str:
    """The bucket of one sample from its stack's packages (outermost first); see the module docstring.

    ``owner`` is whose code the run measures: mloops, or ``bench`` for a baseline's plain script (whose
    library calls then book to the same library buckets as mloops')."""
    own = [i for i, p in enumerate(packages) if p == owner]
    if not own:
        outer = next((p for p in packages if p not in HARNESS and p not in sys.stdlib_module_names), None)
        return f"outside {owner}: {outer or 'python'}"
    innermost = own[-1]
    if innermost == len(packages) - 1:
        return owner
    callee = packages[innermost + 1]
    if callee == "importlib":
        return IMPORTS
    if callee in sys.stdlib_module_names:
        return owner
    return callee


class Sampler:
    """Books the CPU time of the process's Python threads to :func:`bucket` s, every ``interval`` s, while it
    is active (:meth:`resume` / :meth:`pause`, so only a case's measured section is booked).

    Every Python thread is sampled on its own CPU clock (``dag.test`` serves the Execution API and MLflow
    logs on threads of their own); what the process spends on native threads (OpenMP, BLAS) is what
    its CPU time exceeds the booked total by, reported as ``unbooked_cpu_s``.
    """

    def __init__(self, interval: float = 0.02, owner: str = OWN) -> None:
        self.interval = interval
        self.owner = owner
        self.cpu_s: dict[str, float] = defaultdict(float)
        self.samples = 0
        self._lock = threading.Lock()
        self._active = False
        #: Per thread id: its CPU clock and the clock's value at the previous sample.
        self._clocks: dict[int, tuple[int, float]] = {}
        self._process_started = 0.0
        self._process_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-attribution", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        with self._lock:
            self._clocks = {}
            self._read_clocks(sys._current_frames())
            self._process_started, self._active = time.process_time(), True

    def pause(self) -> None:
        with self._lock:
            self._process_cpu += time.process_time() - self._process_started
            self._active = False

    def close(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return self.result()

    def __enter__(self) -> Sampler:
        self.resume()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pause()
        self.close()

    def _read_clocks(self, frames: dict[int, FrameType]) -> dict[int, float]:
        """CPU seconds each live Python thread of ``frames`` (but this sampler's) spent since the
        previous read."""
        spent = {}
        for ident in frames:
            if ident == self._thread.ident:
                continue
            try:
                clock, last = self._clocks.get(ident) or (time.pthread_getcpuclockid(ident), None)
                now = time.clock_gettime(clock)
            except (OSError, ProcessLookupError):  # the thread ended between the two calls
                self._clocks.pop(ident, None)
                continue
            self._clocks[ident] = (clock, now)
            if last is not None and now > last:
                spent[ident] = now - last
        return spent

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if not self._active:
                    continue
                frames = sys._current_frames()
                for ident, seconds in self._read_clocks(frames).items():
                    self.cpu_s[bucket(_stack(frames[ident]), self.owner)] += seconds
                    self.samples += 1

    def result(self) -> dict[str, Any]:
        booked = sum(self.cpu_s.values())
        return {
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "samples": self.samples,
            "unbooked_cpu_s": round(max(self._process_cpu - booked, 0.0), 3),
        }


def merge(*results: dict[str, Any] | None) -> dict[str, Any] | None:
    """The sum of several :meth:`Sampler.result` s (the three DAG processes of a night, say)."""
    present = [r for r in results if r]
    if not present:
        return None
    total: dict[str, float] = defaultdict(float)
    for r in present:
        for k, v in r["cpu_s"].items():
            total[k] += v
    return {
        "cpu_s": {k: round(v, 3) for k, v in total.items()},
        "samples": sum(r["samples"] for r in present),
        "unbooked_cpu_s": round(sum(r.get("unbooked_cpu_s", 0.0) for r in present), 3),
    }


def shares(result: dict[str, Any] | None, top: int = 6) -> str:
    """``"great_expectations 61% (2.1 s), mloops 9% (0.3 s), ..."``: the largest buckets, for the report."""
    if not result or not result.get("cpu_s"):
        return "not profiled"
    booked = result["cpu_s"]
    total = sum(booked.values()) or 1.0
    ranked = sorted(booked.items(), key=lambda kv: -kv[1])
    parts = [f"{k} {100 * v / total:.0f}% ({v:.1f} s)" for k, v in ranked[:top]]
    rest = sum(v for _, v in ranked[top:])
    if rest:
        parts.append(f"other {100 * rest / total:.0f}% ({rest:.1f} s)")
    return ", ".join(parts)


def excess_by_bucket(subject: dict[str, Any] | None, baseline: dict[str, Any] | None) -> dict[str, float]:
    """CPU seconds the subject spends beyond the baseline per bucket, most first (the owners' own code
    compared as one bucket, "own code"; ``outside mloops: x`` as ``outside: x``); empty if either
    side was not sampled."""
    if not subject or not baseline:
        return {}

    def by_bucket(result: dict[str, Any], owner: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for key, seconds in result["cpu_s"].items():
            name = "own code" if key == owner else key.replace(f"outside {owner}: ", "outside: ")
            out[name] += seconds
        return out

    ours, theirs = by_bucket(subject, OWN), by_bucket(baseline, "bench")
    deltas = ((k, ours.get(k, 0.0) - theirs.get(k, 0.0)) for k in set(ours) | set(theirs))
    return dict(sorted(deltas, key=lambda kv: -kv[1]))


def excess(subject: dict[str, Any] | None, baseline: dict[str, Any] | None, top: int = 6) -> str:
    """``"evidently +3.9 s, great_expectations +1.6 s, ..."``: the buckets where the subject spends the
    most CPU time beyond the baseline (:func:`excess_by_bucket`)."""
    if not subject or not baseline:
        return "not profiled"
    deltas = list(excess_by_bucket(subject, baseline).items())
    return ", ".join(f"{k} {v:+.1f} s" for k, v in deltas[:top])


def summary(result: dict[str, Any]) -> str:
    """:func:`shares` and, when known, the share outside mloops' own code: a sampled case in a sentence."""
    share = library_share(result)
    return shares(result) + (f"; {100 * share:.0f}% outside mloops' own code" if share is not None else "")


def first(runs: Iterable[Any]) -> dict[str, Any] | None:
    """The attribution of the first sampled run of ``runs`` (:class:`bench.harness.Run` s), if any."""
    return next((r.attribution for r in runs if r.attribution), None)


def library_share(result: dict[str, Any] | None) -> float | None:
    """Fraction of the booked CPU time that is not mloops' own code (libraries, imports, outside mloops)."""
    if not result or not result.get("cpu_s"):
        return None
    total = sum(result["cpu_s"].values())
    return None if total <= 0 else round(1 - result["cpu_s"].get(OWN, 0.0) / total, 3)
