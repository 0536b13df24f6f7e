"""The bench's CPU attribution: which bucket a stack books to, and that a sampled run books its CPU time."""

from __future__ import annotations

import time

import pytest

from bench import attribution
from bench.attribution import OWN, Sampler, bucket

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (["runpy", "bench", "mloops", "mloops"], OWN),  # mloops' own Python is running
        (["bench", "mloops", "json"], OWN),  # the standard library on mloops' behalf
        (["bench", "mloops", "importlib", "importlib", "pandas"], "imports"),  # a lazy import
        # everything under mloops' call into a library is that library's, whatever it calls next
        (["bench", "mloops", "great_expectations", "pandas", "numpy"], "great_expectations"),
        (["airflow", "mloops", "mlflow", "mloops", "sklearn", "numpy"], "sklearn"),  # innermost mloops frame
        (["runpy", "bench", "threading", "airflow", "sqlalchemy"], "outside mloops: airflow"),
        (["runpy", "bench", "json"], "outside mloops: python"),
    ],
)
def test_a_stack_books_to_the_library_mloops_called(stack: list[str], expected: str) -> None:
    assert bucket(stack) == expected


def _own_work() -> int:
    return sum(i * i for i in range(400_000))


def test_a_sampled_section_books_its_cpu_time_and_not_its_waits() -> None:
    sampler = Sampler(interval=0.002)
    sampler.resume()
    started = time.thread_time()
    for _ in range(20):
        _own_work()
    time.sleep(0.3)  # a wait: no CPU, so nothing booked for it
    spent = time.thread_time() - started
    sampler.pause()
    booked = sampler.close()
    assert booked["samples"] > 10
    total = sum(booked["cpu_s"].values())
    # What is booked is the thread's CPU time (less the last partial interval), not its wall time.
    assert 0.5 * spent <= total <= spent + 0.01
    assert spent < 0.3 + total  # the sleep did not count
    # No mloops frame on this test's stack: all of it is outside mloops, owned by the test runner.
    assert all(key.startswith("outside mloops: ") for key in booked["cpu_s"]), booked


def test_a_paused_sampler_books_nothing() -> None:
    sampler = Sampler(interval=0.002)
    _own_work()
    time.sleep(0.05)
    assert sampler.close() == {"cpu_s": {}, "samples": 0, "unbooked_cpu_s": 0.0}


def test_work_on_another_python_thread_is_booked_too() -> None:
    import threading

    worker = threading.Thread(target=lambda: [_own_work() for _ in range(15)])
    with Sampler(interval=0.002) as sampler:
        started = time.process_time()
        worker.start()
        worker.join()
        spent = time.process_time() - started
    booked = sampler.result()
    total = sum(booked["cpu_s"].values())
    assert 0.5 * spent <= total <= spent + 0.01, booked
    assert booked["unbooked_cpu_s"] <= 0.5 * spent


def test_shares_and_library_share_read_the_booked_seconds() -> None:
    merged = attribution.merge(
        {"cpu_s": {"great_expectations": 3.0, OWN: 1.0}, "samples": 10, "unbooked_cpu_s": 0.5},
        None,
        {"cpu_s": {"pandas": 1.0}, "samples": 5, "unbooked_cpu_s": 0.25},
    )
    assert merged == {
        "cpu_s": {"great_expectations": 3.0, OWN: 1.0, "pandas": 1.0},
        "samples": 15,
        "unbooked_cpu_s": 0.75,
    }
    expected = "great_expectations 60% (3.0 s), mloops 20% (1.0 s), pandas 20% (1.0 s)"
    assert attribution.shares(merged) == expected
    assert attribution.library_share(merged) == 0.8
    assert attribution.shares(None) == "not profiled"


def test_a_baseline_books_its_library_calls_to_the_same_buckets() -> None:
    # The plain script is bench code: its call into sklearn books to sklearn, as mloops' does.
    assert bucket(["runpy", "bench", "bench", "sklearn", "numpy"], owner="bench") == "sklearn"
    assert bucket(["runpy", "bench", "bench"], owner="bench") == "bench"
    subject = {"cpu_s": {"sklearn": 5.0, "evidently": 4.0, OWN: 0.5}, "samples": 1}
    baseline = {"cpu_s": {"sklearn": 4.5, "scipy": 0.5, "bench": 0.2}, "samples": 1}
    assert attribution.excess(subject, baseline, top=3) == "evidently +4.0 s, sklearn +0.5 s, own code +0.3 s"
