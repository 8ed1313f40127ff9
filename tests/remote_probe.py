"""Build the NDIF request payload of each public lirefs trace and report what it asks to import.

Run by tests/test_remote.py in a subprocess, usually from a NON-editable install of the repository
(a wheel installed into a temporary ``site-packages`` folder put first on ``PYTHONPATH``)::

    python remote_probe.py --expect-prefix /tmp/x/site-packages CASE [CASE ...]

For each case (``collect``, ``generate-project``, ``generate-add``, ``generate-ablate``, ``evaluate``)
it runs the public function on a tiny random Llama twice, locally and with ``remote="local"``, and
records every payload nnsight serialises (``RequestModel.serialize``: the exact bytes a real
``remote=True`` request carries, before compression). Each payload is then loaded the way the NDIF
server loads it, but with ``lirefs`` and ``tracers`` made unimportable, while recording every
``module.name`` the payload asks pickle to import and every module ``subimport``-ed by name.
Functions that could only be pickled as bytecode (no source; breaks across Python versions) are
recorded too. One JSON object per case is printed on the last line of stdout.
"""

from __future__ import annotations

import argparse
import importlib.abc
import io
import json
import os
import sys
from typing import Any

BLOCKED = ("lirefs", "tracers")
CASES = ("collect", "generate-project", "generate-add", "generate-ablate", "evaluate")


class _Blocker(importlib.abc.MetaPathFinder):
    """Makes ``lirefs``/``tracers`` unimportable, as on an NDIF server."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed on the server)")
        return None


def _tiny_model() -> Any:
    import torch
    import transformers

    import lirefs
    from lirefs.models import smollm2_folder

    tok = transformers.AutoTokenizer.from_pretrained(str(smollm2_folder()))
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    hf = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    return lirefs.wrap(hf, tok, name="tiny-llama")


PROMPTS = [
    "Q: What is the capital of France?\nA: ",
    "Q: Tom buys 4 pens at 3 dollars each and pays with 20 dollars. What is his change?\nA: ",
    "Q: Which element has the symbol Fe?\nA: ",
]


def _run_case(case: str, model: Any, remote: bool | str) -> Any:
    """Run one public trace; returns something comparable between local and remote runs."""
    import torch

    import lirefs

    if case == "collect":
        return lirefs.collect_activations(model, PROMPTS, batch_size=2, remote=remote)
    acts = lirefs.collect_activations(model, PROMPTS, batch_size=3)
    torch.manual_seed(1)
    direction = lirefs.Direction.from_activations(acts[:2], acts[2:], model=model)
    if case.startswith("generate-"):
        mode = case.split("-", 1)[1]
        out = lirefs.generate(  # type: ignore[attr-defined]
            model,
            PROMPTS[:2],
            direction=direction,
            layer=1,
            alpha=0.5 if mode != "ablate" else 0.0,
            mode=mode,
            max_new_tokens=4,
            remote=remote,
        )
        return [list(map(int, ids)) for ids in out.token_ids]
    if case == "evaluate":
        result = lirefs.evaluate(  # type: ignore[attr-defined]
            model,
            "builtin-arithmetic",
            direction=direction,
            layer=1,
            alphas=(0.0, 0.1),
            limit=2,
            max_new_tokens=4,
            n_boot=10,
            remote=remote,
        )
        return [(r["alpha"], r["id"], r["output"]) for r in result.records]
    raise SystemExit(f"unknown case {case!r}")


def _available(case: str) -> bool:
    import lirefs

    if case.startswith("generate-"):
        return callable(getattr(lirefs, "generate", None))
    if case == "evaluate":
        return callable(getattr(lirefs, "evaluate", None))
    return True


def _load_blocked(blob: bytes, persistent: dict[str, Any]) -> dict[str, Any]:
    """Load ``blob`` like the server (lirefs/tracers unimportable); what did it import?"""
    import cloudpickle.cloudpickle as cp
    from nnsight.intervention.serialization import CustomCloudUnpickler

    found: set[str] = set()
    subimports: set[str] = set()

    def recording_subimport(name: str) -> Any:
        subimports.add(name)
        return cp.subimport(name)

    class Recorder(CustomCloudUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            found.add(f"{module}.{name}")
            if (module, name) == ("cloudpickle.cloudpickle", "subimport"):
                return recording_subimport
            return super().find_class(module, name)

    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in BLOCKED}
    for k in saved:
        del sys.modules[k]
    blocker = _Blocker()
    sys.meta_path.insert(0, blocker)
    error = None
    try:
        Recorder(io.BytesIO(blob), persistent).load()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        sys.meta_path.remove(blocker)
        sys.modules.update(saved)
    return {"globals": sorted(found), "subimports": sorted(subimports), "load_error": error}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cases", nargs="+", choices=CASES)
    parser.add_argument("--expect-prefix", default=None, help="lirefs must be imported from here")
    args = parser.parse_args()

    os.environ.setdefault("LIREFS_PROGRESS", "0")
    import torch

    torch.set_num_threads(1)
    import lirefs
    import tracers

    where = {"lirefs": lirefs.__file__, "tracers": tracers.__file__}
    if args.expect_prefix is not None:
        for name, path in where.items():
            if not str(path).startswith(args.expect_prefix):
                raise SystemExit(f"{name} imported from {path}, not from {args.expect_prefix}")

    from nnsight.intervention import serialization
    from nnsight.schema.request import RequestModel

    blobs: list[bytes] = []
    bytecode: list[str] = []
    original_serialize = RequestModel.serialize.__func__  # type: ignore[attr-defined]
    original_reduce = serialization.CustomCloudPickler._dynamic_function_reduce

    def recording_serialize(cls: Any, tracer: Any, compress: bool = False) -> bytes:
        blob = original_serialize(cls, tracer, compress)
        blobs.append(blob)
        return blob

    def recording_reduce(self: Any, func: Any) -> tuple:
        reduced = original_reduce(self, func)
        if reduced[0] is not serialization._load_function:
            bytecode.append(f"{func.__module__}.{func.__qualname__}")
        return reduced

    RequestModel.serialize = classmethod(recording_serialize)  # type: ignore[method-assign,assignment]
    serialization.CustomCloudPickler._dynamic_function_reduce = recording_reduce  # type: ignore[method-assign]

    model = _tiny_model()
    report: dict[str, Any] = {"where": where, "cases": {}}
    for case in args.cases:
        if not _available(case):
            report["cases"][case] = {"skipped": "the public function does not exist yet"}
            continue
        local = _run_case(case, model, False)
        blobs.clear()
        bytecode.clear()
        remote = _run_case(case, model, "local")
        if isinstance(local, torch.Tensor):
            same = bool(torch.equal(local, remote))
            max_diff = float((local - remote).abs().max())
        else:
            same, max_diff = local == remote, 0.0 if local == remote else float("nan")
        persistent = model._remoteable_persistent_objects()
        loads = [_load_blocked(b, persistent) for b in blobs]
        report["cases"][case] = {
            "n_payloads": len(blobs),
            "payload_bytes": [len(b) for b in blobs],
            "same_as_local": same,
            "max_abs_diff": max_diff,
            "bytecode_functions": sorted(set(bytecode)),
            "globals": sorted({g for x in loads for g in x["globals"]}),
            "subimports": sorted({s for x in loads for s in x["subimports"]}),
            "load_errors": [x["load_error"] for x in loads if x["load_error"]],
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
