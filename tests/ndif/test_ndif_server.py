"""lirefs against a real NDIF server (``bash scripts/ndif/run_suite.sh``): same numbers as local.

The server runs SmolLM2-135M-Instruct in float32 on the CPU, from the same weights as the offline
default model, so every remote result must equal the local one exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import lirefs
from lirefs import ndif as rm
from lirefs.errors import RemoteError

REPO_ID = os.environ.get("LIREFS_NDIF_REPO_ID", "HuggingFaceTB/SmolLM2-135M-Instruct")
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "ndif"

PROMPTS = [
    "Q: What is the capital of France?\nA: ",
    "Q: A shop sells pens at 3 dollars each. Tom buys 4 pens and pays with a 20 dollar bill. "
    "How much change does he get?\nA: ",
    "Q: Which element has the symbol Fe?\nA: ",
    "Q: 12 workers build a wall in 6 days. How long would 8 workers take?\nA: ",
    "Q: Who wrote Hamlet?\nA: ",
    "Q: What is 17 times 3?\nA: ",
]


def test_remote_model_is_meta_and_described(remote_model: Any, smollm2: Any) -> None:
    info, here = lirefs.model_info(remote_model), lirefs.model_info(smollm2)
    assert info.source == "remote" and info.repo_id == REPO_ID
    assert (info.n_layers, info.d_model, info.architecture) == (30, 576, "llama")
    assert (here.n_layers, here.d_model) == (info.n_layers, info.d_model)
    assert next(remote_model._module.parameters()).device.type == "meta"


def test_collect_equals_local(remote_model: Any, smollm2: Any, timings: dict[str, float]) -> None:
    local = lirefs.collect_activations(smollm2, PROMPTS, batch_size=2)
    started = time.perf_counter()
    got = lirefs.collect_activations(remote_model, PROMPTS, batch_size=2, remote=True)
    timings["collect_6_prompts_3_requests_first_s"] = time.perf_counter() - started
    started = time.perf_counter()
    again = lirefs.collect_activations(remote_model, PROMPTS, batch_size=2, remote=True)
    timings["collect_6_prompts_3_requests_s"] = time.perf_counter() - started
    assert got.shape == (len(PROMPTS), 31, 576)
    assert torch.equal(got, local)
    assert torch.equal(again, local)


def test_one_request_per_batch(remote_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnsight.intervention.backends.remote import RemoteBackend

    sent: list[int] = []
    original = RemoteBackend.request

    def counting(self: Any, request: Any, tracer: Any) -> Any:
        sent.append(1)
        return original(self, request, tracer)

    monkeypatch.setattr(RemoteBackend, "request", counting)
    lirefs.collect_activations(remote_model, PROMPTS, batch_size=4, remote=True)
    assert len(sent) == 2  # ceil(6 / 4): one request per batch, none per prompt


def _direction(smollm2: Any) -> torch.Tensor:
    acts = lirefs.collect_activations(smollm2, PROMPTS, batch_size=6)
    liref = lirefs.Direction.from_activations(acts[[1, 3, 5]], acts[[0, 2, 4]], model=smollm2)
    return liref.vector(8).to(torch.float32)


@pytest.mark.parametrize(("mode", "alpha"), [("project", 0.1), ("add", 4.0), ("ablate", 0.0)])
def test_generate_equals_local(
    remote_model: Any, smollm2: Any, mode: str, alpha: float, timings: dict[str, float]
) -> None:
    if not callable(getattr(lirefs, "generate", None)):
        pytest.skip("lirefs.generate does not exist yet")
    vector = _direction(smollm2)
    kwargs: dict[str, Any] = {
        "direction": vector,
        "layer": 8,
        "alpha": alpha,
        "mode": mode,
        "max_new_tokens": 6,
    }
    local = lirefs.generate(smollm2, PROMPTS[:3], **kwargs)
    started = time.perf_counter()
    got = lirefs.generate(remote_model, PROMPTS[:3], remote=True, **kwargs)
    timings[f"generate_{mode}_3_prompts_6_tokens_s"] = time.perf_counter() - started
    assert got.token_ids == local.token_ids
    assert got.texts == local.texts


def test_generate_with_a_stop_string_equals_local(remote_model: Any, smollm2: Any) -> None:
    """The server generates to max_new_tokens (it has no tokenizer for stop strings); the rows
    must still end where the local run, which stopped early, ended them."""
    free = lirefs.generate(smollm2, PROMPTS[:3], max_new_tokens=12)
    text = free.texts[0]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    local = lirefs.generate(smollm2, PROMPTS[:3], max_new_tokens=12, stop=[stop])
    got = lirefs.generate(remote_model, PROMPTS[:3], max_new_tokens=12, stop=[stop], remote=True)
    assert local.stopped[0] and len(local.token_ids[0]) < len(free.token_ids[0])
    assert got.token_ids == local.token_ids and got.stopped == local.stopped


def test_collect_with_the_default_batches_equals_local(remote_model: Any, smollm2: Any) -> None:
    local = lirefs.collect_activations(smollm2, PROMPTS)
    got = lirefs.collect_activations(remote_model, PROMPTS, remote=True)
    torch.testing.assert_close(got, local, rtol=0, atol=0)


def _liref(model: Any, remote: bool) -> Any:
    """The direction of ``model`` from its own (local or remote) activations."""
    acts = lirefs.collect_activations(model, PROMPTS, batch_size=6, remote=remote)
    return lirefs.Direction.from_activations(acts[[1, 3, 5]], acts[[0, 2, 4]], model=model)


def test_evaluate_equals_local(remote_model: Any, smollm2: Any) -> None:
    if not callable(getattr(lirefs, "evaluate", None)):
        pytest.skip("lirefs.evaluate does not exist yet")
    kwargs: dict[str, Any] = {
        "layer": 8,
        "alphas": (0.0, 0.1),
        "limit": 3,
        "max_new_tokens": 8,
        "n_boot": 50,
    }
    local = lirefs.evaluate(
        smollm2, "builtin-arithmetic", direction=_liref(smollm2, False), **kwargs
    )
    got = lirefs.evaluate(
        remote_model,
        "builtin-arithmetic",
        direction=_liref(remote_model, True),
        remote=True,
        **kwargs,
    )
    keys = ("alpha", "id", "output", "extracted", "correct")
    assert [{k: r[k] for k in keys} for r in got.records] == [
        {k: r[k] for k in keys} for r in local.records
    ]
    assert got.accuracy == local.accuracy


def test_calibrate_equals_local(remote_model: Any, smollm2: Any, timings: dict[str, float]) -> None:
    """One remote calibration (each steered batch with its unsteered twin in one trace) chooses
    the local alphas, with the local KLs to 1e-6."""
    kwargs: dict[str, Any] = {
        "layer": 8,
        "prompts": PROMPTS[:3],
        "max_kl": 0.05,
        "start": 0.05,
        "factor": 4.0,
        "rtol": 0.25,
        "feature_per_class": 3,
        "progress": False,
    }
    local = lirefs.calibrate(smollm2, _liref(smollm2, False), **kwargs)
    direction = _liref(remote_model, True)
    started = time.perf_counter()
    got = lirefs.calibrate(remote_model, direction, remote=True, **kwargs)
    timings["calibrate_3_prompts_s"] = time.perf_counter() - started
    assert (got.alpha_max, got.alpha_min) == (local.alpha_max, local.alpha_min)
    assert got.status == local.status and got.next_above == local.next_above
    assert [p.alpha for p in got.points] == [p.alpha for p in local.points]
    for ours, theirs in zip(got.points, local.points, strict=True):
        assert ours.kl == pytest.approx(theirs.kl, rel=1e-6, abs=0.0)
        assert ours.within == theirs.within
    assert got.n_pairs == local.n_pairs


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lirefs ...`` in a fresh process (the repo-id cache seeded there too: tests only)."""
    launcher = (
        "import nnsight.modeling.huggingface as h, sys; "
        f"h._ID_CACHE[{REPO_ID!r}] = {REPO_ID!r}; "
        "from lirefs.cli import main; sys.exit(main())"
    )
    return subprocess.run(
        [sys.executable, "-c", launcher, *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_collect_remote_equals_local(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    common = ["collect", "--set", "builtin", "--limit", "16", "--batch-size", "4", "--json"]
    remote = _cli(*common, "--model", REPO_ID, "--remote", "-o", "remote.safetensors", cwd=tmp_path)
    assert remote.returncode == 0, remote.stderr[-2000:]
    report = json.loads(remote.stdout)  # stdout is pure JSON: no NDIF status lines
    assert report["shape"] == [31, 576]
    local = _cli(*common, "--device", "cpu", "-o", "local.safetensors", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-2000:]
    a, b = (
        load_file(str(tmp_path / "remote.safetensors")),
        load_file(str(tmp_path / "local.safetensors")),
    )
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _api(action: str) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPTS / "api.sh"), action], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_resume_after_the_server_stops_mid_run(
    remote_model: Any, smollm2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lirefs.collect as collect

    monkeypatch.setitem(rm.run_remote.__kwdefaults__, "base_delay", 0.5)
    cache = tmp_path / "acts"
    calls: list[int] = []
    original_write = collect.ActivationCache.write_chunk

    def counting(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = collect.read_batch(*args, **kwargs)
        calls.append(1)  # batches that came back (a retried failure is not counted)
        return out

    def write_then_cut(self: Any, manifest: Any, i: int, states: torch.Tensor) -> None:
        original_write(self, manifest, i, states)
        if i == 0:
            _api("stop")  # the server goes away after the first chunk is on disk

    monkeypatch.setattr(collect.ActivationCache, "write_chunk", write_then_cut)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(RemoteError, match=r"could not run .* after 4 attempts") as err:
                lirefs.collect_activations(
                    remote_model,
                    PROMPTS,
                    batch_size=2,
                    chunk_size=2,
                    cache_dir=cache,
                    remote=True,
                    run_batch=counting,
                )
        assert "\n" not in str(err.value)
        assert sum("retry" in str(w.message) for w in caught) == 3
        manifest = json.loads((cache / "manifest.json").read_text())
        assert list(manifest["chunks"]) == ["0"]
    finally:
        _api("start")
    monkeypatch.setattr(collect.ActivationCache, "write_chunk", original_write)
    calls.clear()
    got = lirefs.collect_activations(
        remote_model,
        PROMPTS,
        batch_size=2,
        chunk_size=2,
        cache_dir=cache,
        remote=True,
        run_batch=counting,
    )
    assert len(calls) == 2  # chunks 1 and 2 only: chunk 0 was read back from disk
    # The same batches locally (chunks change which prompts share a batch, hence the padding).
    local = lirefs.collect_activations(
        smollm2, PROMPTS, batch_size=2, chunk_size=2, cache_dir=tmp_path / "local"
    )
    assert torch.equal(got, local)
