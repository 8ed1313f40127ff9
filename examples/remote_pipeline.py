"""The paper's pipeline with every trace on NDIF: collect -> direction -> layer report -> steer.

    python examples/remote_pipeline.py                      # no NDIF_API_KEY: runs offline
    NDIF_API_KEY=... python examples/remote_pipeline.py     # on NDIF, default Llama-3.1-70B
    NDIF_API_KEY=... python examples/remote_pipeline.py --model meta-llama/Llama-3.1-8B --limit 40

With ``NDIF_API_KEY`` set (or a key saved with ``nnsight.CONFIG.set_default_api_key``), the model
is built without weights and each batch is one NDIF request that returns only the last-token
states (``[batch, L + 1, d_model]``). Without a key it uses the offline default model with
``remote="local"``: nnsight serialises every request exactly as for NDIF and runs it here, so the
same code path is exercised with no network. See docs/remote.md.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import lirefs
from lirefs.ndif import api_key, host, is_local_host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="meta-llama/Llama-3.1-70B", help="NDIF-hosted Hub id")
    parser.add_argument("--limit", type=int, default=12, help="questions per class")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=0.1)
    args = parser.parse_args()

    on_ndif = api_key() is not None or is_local_host(host())
    if on_ndif:
        remote: bool | str = True
        model = lirefs.load_model(args.model, remote=True)
        print(f"running on NDIF at {host()} with {args.model} (no weights downloaded)")
    else:
        remote = "local"
        model = lirefs.load_model(lirefs.DEFAULT_MODEL, device="cpu")
        print(
            "no NDIF_API_KEY: running the remote code path in-process (remote='local') on "
            f"{lirefs.DEFAULT_MODEL}; set NDIF_API_KEY to run on NDIF"
        )
    info = lirefs.model_info(model)

    sets = lirefs.data.load("builtin").subset(args.limit, seed=0)
    train, test = sets.split(test_fraction=0.3, seed=0)
    started = time.perf_counter()
    acts = {
        name: lirefs.collect_activations(
            model, prompts, batch_size=args.batch_size, remote=remote, progress=False
        )
        for name, prompts in (
            ("train_r", train.reasoning_prompts()),
            ("train_m", train.memory_prompts()),
            ("test_r", test.reasoning_prompts()),
            ("test_m", test.memory_prompts()),
        )
    }
    n_prompts = sum(a.shape[0] for a in acts.values())
    n_requests = sum(-(-a.shape[0] // args.batch_size) for a in acts.values())
    mib = sum(a.numel() * 4 for a in acts.values()) / 2**20
    print(
        f"collected {n_prompts} prompts x [L + 1 = {info.n_layers + 1}, d = {info.d_model}] in "
        f"{n_requests} requests ({mib:.1f} MiB of float32 states) in "
        f"{time.perf_counter() - started:.1f} s"
    )

    liref = lirefs.Direction.from_activations(acts["train_r"], acts["train_m"], model=model)
    report = lirefs.layer_report(
        liref, acts["test_r"], acts["test_m"], n_permutations=50, probe=False
    )
    layer = report.best_layer
    print(f"held-out AUROC at the chosen layer {layer}: {report.auroc[layer]:.3f}")

    prompts = test.reasoning_prompts()[:2]
    for alpha in (0.0, args.alpha):
        out = lirefs.generate(
            model,
            prompts,
            direction=liref,
            layer=layer,
            alpha=alpha,
            max_new_tokens=24,
            remote=remote,
        )
        print(f"alpha={alpha:+.2f}: {out.texts[0]!r}")


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    main()
