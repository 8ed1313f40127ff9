"""The real-server suite: lirefs with ``remote=True`` against a running NDIF server.

Collected always, run only when ``LIREFS_NDIF_HOST`` names a server (``scripts/ndif/run_suite.sh``
starts one on loopback, serving SmolLM2-135M-Instruct on the CPU, and sets it); otherwise every
test here is skipped with that reason.

Test-only offline shims (never in the library): nnsight asks the Hub for a repo's canonical id when
it builds the model key; with no network ``nnsight.modeling.huggingface._ID_CACHE`` is seeded, and
the config/tokenizer come from the HF cache that start.sh builds (``HF_HOME``, ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOST = os.environ.get("LIREFS_NDIF_HOST", "").strip()
REPO_ID = os.environ.get("LIREFS_NDIF_REPO_ID", "HuggingFaceTB/SmolLM2-135M-Instruct")
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "ndif"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skip = pytest.mark.skip(
        reason="no NDIF server: set LIREFS_NDIF_HOST (bash scripts/ndif/run_suite.sh does)"
    )
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.ndif)
            item.add_marker(pytest.mark.remote)
            if not HOST:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def ndif_env() -> Iterator[None]:
    """Point nnsight at the server and seed its offline repo-id cache (tests only)."""
    if not HOST:
        yield
        return
    import nnsight.modeling.huggingface as hf

    os.environ["NDIF_HOST"] = HOST
    os.environ.pop("NDIF_API_KEY", None)
    hf._ID_CACHE[REPO_ID] = REPO_ID
    yield


@pytest.fixture(scope="session")
def remote_model() -> Any:
    """``lirefs.load_model(REPO_ID, remote=True)``: a meta model, every trace runs on the server."""
    import lirefs

    return lirefs.load_model(REPO_ID, remote=True)


@pytest.fixture(scope="session")
def timings() -> Iterator[dict[str, float]]:
    """Measured request times; written to ``$LIREFS_NDIF_TIMINGS`` (JSON) at the end."""
    got: dict[str, float] = {}
    yield got
    path = os.environ.get("LIREFS_NDIF_TIMINGS")
    if path and got:
        import json

        Path(path).write_text(json.dumps(got, indent=2) + "\n")
