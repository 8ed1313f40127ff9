"""NDIF access: building remote models, trace options, keys and hosts.

Every lirefs function that runs a trace takes ``remote``:

* ``False``: run locally;
* ``True``: send the trace to NDIF (``NDIF_API_KEY`` / ``NDIF_HOST``);
* ``"local"``: nnsight's in-process remote path (serialises the request like a real one, runs it
  here): what the tests use.
"""

from __future__ import annotations

from typing import Any

from .errors import RemoteError

__all__ = ["load_remote_model", "trace_kwargs"]


def trace_kwargs(remote: bool | str) -> dict[str, Any]:
    """Keyword arguments for ``model.trace``/``model.generate`` for a ``remote`` setting."""
    if remote is False or remote is None:
        return {}
    if remote is True or remote == "local":
        return {"remote": remote}
    raise RemoteError(f"remote must be False, True or 'local', got {remote!r}")


def load_remote_model(repo_id: str, *, layout: Any = None, revision: str | None = None) -> Any:
    """An nnsight model for ``repo_id`` built on the meta device (no weights) for NDIF traces."""
    import hashlib

    from nnsight.modeling.transformers import TransformersModel
    from transformers import AutoTokenizer

    import tracers

    from .models import ModelInfo, _hidden_size, _looks_like_hub_id

    if not _looks_like_hub_id(repo_id):
        raise RemoteError(
            f"remote models are Hub ids like 'meta-llama/Llama-3.1-70B', got {repo_id!r}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(repo_id, revision=revision)
        model = TransformersModel(repo_id, tokenizer=tokenizer, revision=revision)
    except OSError as exc:
        raise RemoteError(
            f"could not read the config of {repo_id!r} from the Hub: {str(exc).splitlines()[0]}"
        ) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = model.config
    lay = tracers.layout_of(model, layout)
    info = ModelInfo(
        name=repo_id,
        source="remote",
        fingerprint=hashlib.sha256(f"{repo_id}@{revision or 'main'}".encode()).hexdigest()[:16],
        architecture=str(config.model_type),
        n_layers=tracers.n_layers(model, lay),
        d_model=_hidden_size(config),
        dtype=str(getattr(config, "dtype", "unknown")).replace("torch.", ""),
        repo_id=repo_id,
    )
    model.lirefs_info = info
    if layout is not None:
        model.lirefs_layout = layout
    return model
