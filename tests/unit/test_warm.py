"""The warm parent (``python -m mloops.warm``) imports what the stages use; nothing stops the component."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mloops import warm
from tests.helpers import REPO

pytestmark = pytest.mark.unit


def _python(code: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter that sees the repository only (nothing imported yet)."""
    base = {"PYTHONPATH": f"{REPO / 'plugins'}:{REPO}", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **env},
    )


def test_every_stage_library_is_warmed_and_stage_modules_last() -> None:
    libraries = {m for mods in warm.STAGE_IMPORTS.values() for m in mods if not m.startswith("mloops.")}
    assert libraries <= set(warm.WARM_MODULES)
    assert {f"mloops.stages.{s}" for s in warm.STAGE_IMPORTS} <= set(warm.WARM_MODULES)
    assert len(warm.WARM_MODULES) == len(set(warm.WARM_MODULES))
    first_mloops = next(i for i, m in enumerate(warm.WARM_MODULES) if m.startswith("mloops."))
    assert all(m.startswith("mloops.") for m in warm.WARM_MODULES[first_mloops:])


def test_a_validation_task_needs_neither_evidently_nor_skops() -> None:
    assert not {"evidently", "skops.io", "mlflow"} & set(warm.STAGE_IMPORTS["validate"])
    assert "great_expectations" not in warm.STAGE_IMPORTS["registry"]


def test_a_stage_that_calls_mlflow_finds_its_stores_warm_and_validation_does_not() -> None:
    assert set(warm.STORE_IMPORTS) <= set(warm.stage_modules("registry"))
    assert not set(warm.STORE_IMPORTS) & set(warm.stage_modules("validate"))
    assert warm.stage_modules("test")[: len(warm.STAGE_IMPORTS["test"])] == warm.STAGE_IMPORTS["test"]
    assert {"skops.io", "mlflow.sklearn"} <= set(warm.stage_modules("test"))  # it loads two models


def test_a_module_that_fails_to_import_is_reported_not_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    took = warm.warm(("json", "mloops_no_such_module"))
    assert list(took) == ["json"]
    assert "could not import mloops_no_such_module" in capsys.readouterr().err


def test_the_stage_modules_import_no_heavy_library_at_module_level() -> None:
    """The warm parent is what pays for the libraries; the stage modules themselves stay light."""
    code = (
        "import sys; import mloops.stages.validate, mloops.stages.drift, mloops.stages.registry;"
        "print(sorted(m for m in ('great_expectations', 'evidently', 'mlflow', 'sklearn', 'skops')"
        " if m in sys.modules))"
    )
    done = _python(code, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_a_warm_task_imports_no_mlflow_store_on_its_first_client_call(tmp_path) -> None:
    """What a task does first with MLflow (its fleet row refresh) finds the store modules imported."""
    code = (
        "import sys; from mloops import warm; warm.warm();"
        "before = set(sys.modules);"
        "from mloops.adapters.mlflow_adapter import client; from mloops.settings import get_settings;"
        "client(get_settings()).search_experiments();"
        "stores = ('mlflow.store.tracking', 'mlflow.store.model_registry', 'mlflow.store.workspace',"
        " 'alembic');"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(stores)))"
    )
    create_store = (  # as `make run` does before the first task
        "from mloops.adapters.mlflow_adapter import client; from mloops.settings import get_settings;"
        "client(get_settings()).search_experiments()"
    )
    created = _python(create_store, MLOOPS_HOME=str(tmp_path))
    assert created.returncode == 0, created.stderr[-3000:]
    done = _python(code, MLOOPS_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_without_a_command_it_says_how_to_call_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert warm.main([]) == 2
    assert "usage: python -m mloops.warm <airflow command>" in capsys.readouterr().err


def test_a_warm_training_task_finds_the_installed_distributions_read(tmp_path) -> None:
    """Logging a model checks its pinned requirements against what is installed; the map that check
    builds from every distribution's metadata is filled once by the warm parent, and the check then
    uses it instead of building its own."""
    code = (
        "from mloops import warm; from mlflow.utils import requirements_utils as r;"
        "assert r._MODULES_TO_PACKAGES is None; warm.warm(warm.stage_modules('train'));"
        "filled = r._MODULES_TO_PACKAGES; assert filled and 'scikit-learn' in filled['sklearn'];"
        "r._check_requirement_satisfied('scikit-learn==0.0.1'); assert r._MODULES_TO_PACKAGES is filled;"
        "print('ok')"
    )
    done = _python(code, timeout=180, HOME=str(tmp_path))
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
