"""Measuring one case: a fresh subprocess per run, its wall time and peak RSS, medians and ratios.

The parent never does measured work itself. Each run starts ``python -m bench.child`` with a JSON
spec naming a ``module:function`` case; the child records its own section timings and its RSS
just before the measured work (after the imports it needs), and the parent reaps it with
``os.wait4`` (CPU seconds); the peak RSS is the child's own high-water mark (``VmHWM``, and its reaped
descendants'), reported by the child.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import attribution

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024

#: Variables of the caller's shell that would point a child at real state instead of its tmp dirs.
_LEAKY_PREFIXES = ("MLOOPS_", "MLFLOW_", "AIRFLOW__", "AIRFLOW_HOME", "GX_", "PYTHONPATH")


class CaseFailed(RuntimeError):
    """A measured child exited non-zero or reported no result; the message carries its log tail."""


@dataclass(frozen=True)
class Run:
    """One finished child: what the parent saw (wall, peak RSS) and what the child reported."""

    label: str
    wall_s: float
    peak_rss: int
    report: Mapping[str, Any]
    #: User + system CPU seconds of the child process (``wait4``), whatever it did.
    cpu_s: float = 0.0

    @property
    def result(self) -> Mapping[str, Any]:
        return self.report["result"]

    @property
    def rss_base(self) -> int:
        """RSS just before the measured work (after the case's imports); 0 if the case did not mark it."""
        return int(self.report.get("rss_base") or 0)

    @property
    def peak_delta(self) -> int:
        """Peak RSS above the pre-work RSS: the working memory the measured work needed."""
        return max(self.peak_rss - self.rss_base, 0) if self.rss_base else self.peak_rss

    @property
    def attribution(self) -> dict[str, Any] | None:
        """Where the measured work's CPU time went, if the run was sampled (:mod:`bench.attribution`)."""
        return self.report.get("attribution")

    def time(self, name: str) -> float:
        return float(self.report["times"][name])

    def cpu(self, name: str) -> float:
        return float(self.report["cpu"][name])


@dataclass
class Workspace:
    """Where a bench run keeps its temporary files, and how it starts children."""

    root: Path
    verbose: bool = False
    log: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr, flush=True))
    _counter: int = 0

    def path(self, *parts: str) -> Path:
        target = self.root.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def env(self, **overrides: str) -> dict[str, str]:
        """A clean child environment: the caller's shell minus mloops/MLflow/Airflow state pointers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
                "PYTHONHASHSEED": "0",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "1",
                "GX_ANALYTICS_ENABLED": "false",
                "GIT_PYTHON_REFRESH": "quiet",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # Both sides on one OpenMP thread, as mloops' executors run tasks (the local stack and
                # the compose workers set it): on a loaded 2-core machine, OpenMP's spinning threads
                # otherwise tripled the CPU seconds of a training step and made its wall time swing.
                "OMP_NUM_THREADS": "1",
            }
        )
        env.update(overrides)
        return env

    def run(
        self,
        target: str,
        params: Mapping[str, Any],
        *,
        env: Mapping[str, str],
        label: str,
        timeout: float = 900.0,
        attribute: str | None = None,
    ) -> Run:
        """Run ``target`` (``module:function``) in a fresh interpreter and reap it with ``wait4``.

        With ``attribute`` (the name of one of the case's ``probe.timed`` sections), the child samples
        where that section's CPU time goes (:mod:`bench.attribution`; its overhead is small but not nil,
        so a section profiles one repeat only)."""
        self._counter += 1
        folder = self.path("children", f"{self._counter:03d}-{_slug(label)}")
        spec_path, out_path, log_path = folder / "spec.json", folder / "out.json", folder / "child.log"
        spec = {"target": target, "params": dict(params), "attribute": attribute}
        spec_path.write_text(json.dumps(spec, default=str))
        cmd = [sys.executable, "-m", "bench.child", str(spec_path), str(out_path)]
        with log_path.open("wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            timer = threading.Timer(timeout, _kill_group, args=(proc.pid,))
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out_path.exists():
            tail = log_path.read_text(errors="replace")[-4000:]
            reason = "timed out" if proc.returncode == -signal.SIGKILL else f"exit code {proc.returncode}"
            raise CaseFailed(f"{label}: {target} failed ({reason}); log {log_path}:\n{tail}")
        report = json.loads(out_path.read_text())
        # The child's own high-water mark; ``ru_maxrss`` only where /proc is missing (it includes the
        # forking parent's RSS on Linux, see ``bench.child.peak_rss_now``).
        peak = int(report.get("peak_rss") or 0) or usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        cpu_s = usage.ru_utime + usage.ru_stime
        run = Run(label=label, wall_s=wall, peak_rss=peak, report=report, cpu_s=cpu_s)
        if self.verbose:
            self.log(f"    {label}: wall {wall:.2f}s, peak RSS {peak / MB:.0f} MB")
        return run


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60]


def wall(*sections: str) -> Callable[[Run], float]:
    """The summed wall time of the named sections of a run (a missing section is an error)."""
    return lambda run: sum(run.time(name) for name in sections)


def cpu(*sections: str) -> Callable[[Run], float]:
    """The summed CPU time of the named sections of a run."""
    return lambda run: sum(run.cpu(name) for name in sections)


def interleaved(repeats: int, variants: Sequence[str]) -> Iterable[tuple[int, str]]:
    """``(repeat, variant)`` pairs, reversing the order on odd repeats (ABBA) so drift hits both sides."""
    for repeat in range(repeats):
        order = variants if repeat % 2 == 0 else list(reversed(variants))
        for variant in order:
            yield repeat, variant


def median(values: Iterable[float]) -> float:
    values = list(values)
    return float(statistics.median(values)) if values else float("nan")


def paired_ratio(subject: Sequence[float], baseline: Sequence[float]) -> float:
    """Median of per-repeat ratios; each pair was measured back to back, so load drift cancels."""
    ratios = [s / b for s, b in zip(subject, baseline, strict=True) if b > 0]
    return median(ratios) if ratios else float("nan")


def summary(
    runs: Sequence[Run], time_of: Callable[[Run], float], cpu_of: Callable[[Run], float] | None = None
) -> dict[str, Any]:
    """Medians of one side of a case: the measured time, process wall time and memory."""
    out = {
        "repeats": len(runs),
        "time_s": round(median(time_of(r) for r in runs), 4),
        "times_s": [round(time_of(r), 4) for r in runs],
        "process_wall_s": round(median(r.wall_s for r in runs), 4),
        "peak_rss_mb": round(median(r.peak_rss for r in runs) / MB, 1),
        "peak_delta_mb": round(median(r.peak_delta for r in runs) / MB, 1),
        "loadavg_1m": round(median(r.report["loadavg_1m"][0] for r in runs), 2),
    }
    if cpu_of is not None:
        out["cpu_s"] = round(median(cpu_of(r) for r in runs), 4)
    return out


def cpu_ratio(subject: Sequence[Run], baseline: Sequence[Run], cpu_of: Callable[[Run], float]) -> float:
    """The paired ratio of CPU seconds: a cross-check of the wall-time ratio on a loaded machine."""
    return round(paired_ratio([cpu_of(r) for r in subject], [cpu_of(r) for r in baseline]), 3)


def memory_ratio(subject: Sequence[Run], baseline: Sequence[Run]) -> float | None:
    """Median peak working memory of the subject over the baseline's (same stage, same data)."""
    base = median(r.peak_delta for r in baseline)
    return round(median(r.peak_delta for r in subject) / base, 2) if base > 0 else None


def alternative(
    name: str,
    what: str,
    runs: Sequence[Run],
    baseline: Sequence[Run],
    time_of: Callable[[Run], float],
    cpu_of: Callable[[Run], float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A measured alternative of a case (a what-if run beside it, against the same baseline runs):
    what a budget not met was tried with, so the results show it, not a note measured another day.

    ``runs`` pair with ``baseline`` by repeat (the case's interleaving measured them back to back).
    """
    out = {"name": name, "what": what, **_against(runs, baseline, time_of, cpu_of)}
    out.update(extra)
    return out


def _against(
    subject: Sequence[Run],
    baseline: Sequence[Run],
    time_of: Callable[[Run], float],
    cpu_of: Callable[[Run], float] | None,
) -> dict[str, Any]:
    """The subject's medians and its paired time and CPU ratios to the baseline (a case's or an
    alternative's figures)."""
    return {
        "subject": summary(subject, time_of, cpu_of),
        "ratio": round(paired_ratio([time_of(r) for r in subject], [time_of(r) for r in baseline]), 3),
        "cpu_ratio": cpu_ratio(subject, baseline, cpu_of) if cpu_of else None,
    }


def examples() -> Any:
    """The example data generator: ``mloops_examples.generator`` (or its old ``mloops.data`` home)."""
    try:
        from mloops_examples import generator
    except ImportError:
        from mloops.data import generator  # type: ignore[no-redef]
    return generator


def case(
    name: str,
    size: int | None,
    metric: str,
    subject: Sequence[Run],
    baseline: Sequence[Run],
    time_of: Callable[[Run], float],
    cpu_of: Callable[[Run], float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of a benchmark: both sides' medians, the paired time ratio, CPU ratio and memory ratio."""
    out = {
        "name": name,
        "size": size,
        "metric": metric,
        **_against(subject, baseline, time_of, cpu_of),
        "baseline": summary(baseline, time_of, cpu_of),
        "memory_ratio": memory_ratio(subject, baseline),
        "attribution": attribution.first(subject),
    }
    out.update(extra)
    return out
