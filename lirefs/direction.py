"""The Linear Reasoning Feature: per-layer difference of class means, in float64.

``r_l = mean(h_l | reasoning) - mean(h_l | memory)`` for every residual index ``l = 0..L``
(``h_l == HF output_hidden_states[l]`` at the last prompt token). ``r̂_l = r_l / ||r_l||`` is what
projections use; the score of a prompt at layer ``l`` is ``h_l · r̂_l``.

A ``Direction`` keeps every layer's candidate (and both class means), so the layer choice can be
revisited later; it saves as one safetensors file whose header carries the metadata (model, layer
convention, class sizes, data hash, settings, lirefs version).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checks import residual_index
from .errors import ActivationError, DataError, DirectionError, LayerError, MetadataMismatchError
from .layer_names import layer_map
from .store import (
    atomic_folder,
    check_metadata,
    hash_texts,
    load_tensors,
    make_metadata,
    save_tensors,
)

__all__ = ["Direction", "card_data", "layer_map"]

_TENSORS = ("vectors", "mean_reasoning", "mean_memory")


def _check_acts(acts: torch.Tensor, name: str) -> None:
    if not isinstance(acts, torch.Tensor):
        raise ActivationError(
            f"{name} must be a torch.Tensor [n, L + 1, d_model], got {type(acts).__name__}"
        )
    if acts.dim() != 3:
        raise ActivationError(f"{name} must be [n, L + 1, d_model], got shape {tuple(acts.shape)}")
    if acts.shape[0] == 0:
        raise DataError(f"{name} is empty: each class needs at least one prompt")
    if not torch.isfinite(acts).all():
        raise ActivationError(f"{name} contains NaN or inf; recollect it (try dtype='float32')")


@dataclass
class Direction:
    """Per-layer reasoning-minus-memory mean difference.

    Attributes:
        vectors: ``[L + 1, d_model]`` float64, ``vectors[l] = r_l``.
        mean_reasoning: ``[L + 1, d_model]`` float64 class mean of the reasoning prompts.
        mean_memory: ``[L + 1, d_model]`` float64 class mean of the memory prompts.
        n_reasoning: number of reasoning prompts the means were taken over.
        n_memory: number of memory prompts.
        metadata: model, data hash, settings and version (see ``lirefs.store``).
    """

    vectors: torch.Tensor
    mean_reasoning: torch.Tensor
    mean_memory: torch.Tensor
    n_reasoning: int
    n_memory: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tensors = (self.vectors, self.mean_reasoning, self.mean_memory)
        if not all(isinstance(t, torch.Tensor) for t in tensors):
            raise DirectionError(
                "Direction(vectors, mean_reasoning, mean_memory, ...) takes three tensors; build "
                "one with Direction.from_activations or load one with Direction.load"
            )
        shape = tuple(self.vectors.shape)
        if self.vectors.dim() != 2 or shape[0] < 2 or shape[1] < 1:
            raise DirectionError(f"vectors must be [L + 1, d_model] with L >= 1, got {shape}")
        if any(t.dtype != torch.float64 for t in tensors):
            raise DirectionError(
                f"Direction tensors must be float64, got {[str(t.dtype) for t in tensors]}; "
                "convert with .to(torch.float64)"
            )
        if not tuple(self.mean_reasoning.shape) == shape == tuple(self.mean_memory.shape):
            raise DirectionError(
                f"vectors {shape}, mean_reasoning {tuple(self.mean_reasoning.shape)} and "
                f"mean_memory {tuple(self.mean_memory.shape)} must have one shape"
            )
        for name in ("n_reasoning", "n_memory"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DirectionError(f"{name} must be a whole number >= 0, got {value!r}")

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_activations(
        cls,
        reasoning_acts: torch.Tensor,
        memory_acts: torch.Tensor,
        *,
        model: Any = None,
        data: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Direction:
        """Difference of class means, layer by layer, accumulated in float64.

        Args:
            reasoning_acts: ``[n_r, L + 1, d_model]`` states of reasoning-heavy prompts.
            memory_acts: ``[n_m, L + 1, d_model]`` states of memory-heavy prompts.
            model: the model the states came from (its ``ModelInfo`` goes into the metadata), or a
                ``ModelInfo``/dict.
            data: data description for the metadata (``hash``, source...).
            settings: anything else worth recording (prompt format, batch size...).
        """
        _check_acts(reasoning_acts, "reasoning_acts")
        _check_acts(memory_acts, "memory_acts")
        if reasoning_acts.shape[1:] != memory_acts.shape[1:]:
            raise ActivationError(
                f"reasoning_acts {tuple(reasoning_acts.shape)} and memory_acts "
                f"{tuple(memory_acts.shape)} disagree on [L + 1, d_model]; collect both with the "
                "same model and layers"
            )
        mean_r = reasoning_acts.to(torch.float64).mean(dim=0)
        mean_m = memory_acts.to(torch.float64).mean(dim=0)
        vectors = mean_r - mean_m
        if not torch.isfinite(vectors).all():  # finite states whose sum overflows float64
            raise ActivationError(
                "the class means of these states overflow float64 (values near 1e308); rescale "
                "the states (e.g. divide both classes by the same constant) and try again"
            )
        model_dict = _model_dict(model)
        if model_dict is not None:
            want = (model_dict.get("n_layers", -1) + 1, model_dict.get("d_model"))
            if tuple(reasoning_acts.shape[1:]) != want:
                raise ActivationError(
                    f"these states are [n, {reasoning_acts.shape[1]}, {reasoning_acts.shape[2]}] "
                    f"but model {model_dict.get('name')!r} has [L + 1, d_model] = [{want[0]}, "
                    f"{want[1]}]: pass the model the states were collected with"
                )
        data = dict(data or {})
        data.setdefault("n_reasoning", int(reasoning_acts.shape[0]))
        data.setdefault("n_memory", int(memory_acts.shape[0]))
        meta = make_metadata("direction", model=model_dict, data=data, settings=settings)
        return cls(
            vectors, mean_r, mean_m, int(reasoning_acts.shape[0]), int(memory_acts.shape[0]), meta
        )

    # -- shape ---------------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """``L``: residual indices run ``0..L``."""
        return int(self.vectors.shape[0]) - 1

    @property
    def d_model(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def chosen_layer(self) -> int | None:
        """The layer chosen on held-out data when the direction was built (``lirefs direction``,
        ``lirefs demo``, ``lirefs.analysis.find_direction``), or ``None`` if none was recorded."""
        value = (self.metadata.get("settings") or {}).get("best_layer")
        return None if value is None else int(value)

    def resolve_layer(self, layer: int | None = None) -> int:
        """``layer`` if given, else the chosen layer (``chosen_layer``), checked in ``0..L``.

        Raises:
            LayerError: no layer given and none recorded (the message says to pass one), or a
                layer outside ``0..L``.
        """
        if layer is None:
            layer = self.chosen_layer
        if layer is None:
            raise LayerError(
                f"this direction (residual indices 0..{self.n_layers}) records no chosen layer "
                "(settings.best_layer); pass layer=... (--layer on the command line), or record "
                "the held-out choice with direction.with_layer(report)"
            )
        return self._layer(layer)

    def _layer(self, layer: int) -> int:
        return residual_index(layer, self.n_layers, "this direction has")

    # -- projections ---------------------------------------------------------------------------

    def vector(self, layer: int) -> torch.Tensor:
        """``r_l``, the raw mean difference at residual index ``layer``: ``[d_model]`` float64."""
        return self.vectors[self._layer(layer)].clone()

    def norm(self, layer: int) -> float:
        """``||r_l||``."""
        return float(self.vectors[self._layer(layer)].norm())

    def unit(self, layer: int) -> torch.Tensor:
        """``r̂_l = r_l / ||r_l||``: ``[d_model]`` float64.

        Raises:
            DirectionError: the direction at this layer is all zeros (e.g. layer 0 of a model whose
                prompts all end in the same token).
        """
        r = self.vectors[self._layer(layer)]
        norm = float(r.norm())
        if norm == 0.0 or not math.isfinite(norm):
            raise DirectionError(
                f"the direction at layer {layer} is all zeros (both classes have the same mean "
                "state there); choose another layer"
            )
        return r / norm

    def units(self) -> torch.Tensor:
        """``[L + 1, d_model]`` float64 unit vectors; rows of zero directions stay zero."""
        norms = self.vectors.norm(dim=1, keepdim=True)
        return torch.where(
            norms > 0, self.vectors / norms.clamp_min(1e-300), torch.zeros_like(self.vectors)
        )

    def scores(self, acts: torch.Tensor, layer: int) -> torch.Tensor:
        """Reasoning scores ``h_l · r̂_l`` of each prompt: ``[n]`` float64.

        Args:
            acts: ``[n, L + 1, d_model]`` (all layers, as from ``collect_activations``) or
                ``[n, d_model]`` (states already taken at ``layer``).
        """
        layer = self._layer(layer)
        if acts.dim() == 3:
            if acts.shape[1:] != self.vectors.shape:
                raise DirectionError(
                    f"activations {tuple(acts.shape)} do not match this direction "
                    f"[L + 1, d_model] = {tuple(self.vectors.shape)}"
                )
            acts = acts[:, layer]
        if acts.dim() != 2 or acts.shape[1] != self.d_model:
            raise DirectionError(
                f"activations must be [n, {self.d_model}] or [n, {self.n_layers + 1}, "
                f"{self.d_model}], got {tuple(acts.shape)}"
            )
        return acts.to(torch.float64) @ self.unit(layer)

    def check_model(self, model: Any) -> None:
        """Refuse a model whose fingerprint or width differs from the one this was built on."""
        info = _model_dict(model)
        if info is None:
            return
        if info.get("d_model") != self.d_model or info.get("n_layers") != self.n_layers:
            raise DirectionError(
                f"this direction is [L + 1, d_model] = [{self.n_layers + 1}, {self.d_model}] but model "
                f"{info.get('name')!r} has L + 1 = {info.get('n_layers', 0) + 1}, d_model = "
                f"{info.get('d_model')}; use a direction found on this model"
            )
        check_metadata(self.metadata, what="this direction", model=info)

    # -- layer choice --------------------------------------------------------------------------

    def with_layer(self, layer: Any, *, how: str | None = None) -> Direction:
        """A copy that records ``layer`` as its chosen layer (``settings.best_layer``).

        ``lirefs direction`` writes the held-out choice into the file; in Python, record it the
        same way before saving, so ``lirefs export``, ``lirefs evaluate``, ``transfer_report``
        and ``steer`` find it::

            report = lirefs.layer_report(liref, test_r, test_m)
            liref = liref.with_layer(report)          # report.best_layer, rule "auroc"
            liref.save("liref.safetensors")

        Args:
            layer: a ``LayerReport`` of this direction (its ``best_layer``, rule ``"auroc"``) or
                a residual index ``0..L`` (rule ``"given"``).
            how: how the layer was chosen, in words (recorded as ``settings.layer_choice``).

        Raises:
            DirectionError: the report was made for another direction.
            LayerError: the index is outside ``0..L``.
        """
        settings = dict(self.metadata.get("settings") or {})
        best = getattr(layer, "best_layer", None)
        if best is not None:
            report_meta = getattr(layer, "metadata", None) or {}
            made_for = (report_meta.get("data") or {}).get("direction_data")
            if "direction_data" in (report_meta.get("data") or {}) and made_for != (
                self.metadata.get("data")
            ):
                raise DirectionError(
                    "this layer report was made for another direction (its direction data "
                    f"{made_for!r} differs from this one's {self.metadata.get('data')!r}); pass "
                    "the report of this direction, or the layer number"
                )
            chosen = residual_index(best, self.n_layers, "this direction has")
            test_hash = (report_meta.get("data") or {}).get("test_states_hash")
            settings["layer_rule"] = "auroc"
            settings["layer_choice"] = how or (
                "highest AUROC of the projection score on held-out states "
                f"(lirefs.layer_report, test states hash {test_hash})"
            )
        else:
            if isinstance(layer, bool) or not isinstance(layer, int):
                raise LayerError(
                    f"layer must be a residual index 0..{self.n_layers} or a LayerReport, got "
                    f"{type(layer).__name__}"
                )
            chosen = residual_index(layer, self.n_layers, "this direction has")
            settings["layer_rule"] = "given"
            settings["layer_choice"] = how or "given by the user"
        settings["best_layer"] = int(chosen)
        return self._derived(self.vectors, self.mean_reasoning, self.mean_memory, settings=settings)

    # -- arithmetic (as repeng / steering-vectors vectors combine) -------------------------------

    def _derived(
        self,
        vectors: torch.Tensor,
        mean_reasoning: torch.Tensor,
        mean_memory: torch.Tensor,
        *,
        settings: dict[str, Any],
        data: dict[str, Any] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> Direction:
        """A new Direction sharing this one's model, with fresh metadata (same version stamp)."""
        meta = make_metadata(
            "direction",
            model=self.metadata.get("model"),
            data=dict(self.metadata.get("data") or {}) if data is None else data,
            settings=settings,
        )
        for key, value in self.metadata.items():
            meta.setdefault(key, value)
        n_r, n_m = counts if counts is not None else (self.n_reasoning, self.n_memory)
        return Direction(vectors, mean_reasoning, mean_memory, n_r, n_m, meta)

    def _operand(self) -> dict[str, Any]:
        """What a combination records about one operand."""
        settings = self.metadata.get("settings") or {}
        out: dict[str, Any] = {
            "vectors_hash": _tensor_hash(self.vectors),
            "data_hash": (self.metadata.get("data") or {}).get("hash"),
            "best_layer": self.chosen_layer,
        }
        if "combined" in settings:
            out["combined"] = settings["combined"]
        return out

    def _scaled(self, factor: Any, op: str) -> Direction:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            return NotImplemented  # type: ignore[no-any-return]
        k = float(factor)
        if not math.isfinite(k):
            raise DirectionError(f"a direction can only be scaled by a finite number, got {k}")
        settings = dict(self.metadata.get("settings") or {})
        settings["combined"] = {"op": op, "factor": k, "operands": [self._operand()]}
        return self._derived(
            self.vectors * k, self.mean_reasoning * k, self.mean_memory * k, settings=settings
        )

    def _combined(self, other: Any, sign: float, op: str) -> Direction:
        if not isinstance(other, Direction):
            return NotImplemented  # type: ignore[no-any-return]
        if other.vectors.shape != self.vectors.shape:
            raise DirectionError(
                f"cannot {op} directions of [L + 1, d_model] = {tuple(self.vectors.shape)} and "
                f"{tuple(other.vectors.shape)}: both must come from one model"
            )
        mine = (self.metadata.get("model") or {}).get("fingerprint")
        theirs = (other.metadata.get("model") or {}).get("fingerprint")
        if mine != theirs:
            names = [(d.metadata.get("model") or {}).get("name") for d in (self, other)]
            raise DirectionError(
                f"cannot {op} a direction of model {names[0]!r} (fingerprint {mine}) and one of "
                f"{names[1]!r} (fingerprint {theirs}): both must come from the same model"
            )
        operands = [self._operand(), other._operand()]
        layers = {self.chosen_layer, other.chosen_layer}
        settings: dict[str, Any] = {"combined": {"op": op, "operands": operands}}
        if len(layers) == 1 and None not in layers:
            settings["best_layer"] = self.chosen_layer
            settings["layer_rule"] = "shared by both operands"
        hashes = [str(o["data_hash"]) for o in operands]
        data = {"hash": hash_texts(hashes, op), "combined_from": hashes}
        other_v = other.vectors.to(self.vectors.device)
        other_r = other.mean_reasoning.to(self.vectors.device)
        other_m = other.mean_memory.to(self.vectors.device)
        return self._derived(
            self.vectors + sign * other_v,
            self.mean_reasoning + sign * other_r,
            self.mean_memory + sign * other_m,
            settings=settings,
            data=data,
            counts=(self.n_reasoning + other.n_reasoning, self.n_memory + other.n_memory),
        )

    def __add__(self, other: Any) -> Direction:
        """``d1 + d2``: the per-layer sum (means summed alike; counts are the two sets' totals).

        Both must come from one model (same fingerprint and ``[L + 1, d_model]``); the result
        records ``settings.combined = {"op": "add", "operands": [...]}`` (each operand's vector
        hash, data hash and chosen layer) and keeps a chosen layer only when both share it.
        """
        return self._combined(other, 1.0, "add")

    def __sub__(self, other: Any) -> Direction:
        """``d1 - d2``: the per-layer difference (see ``__add__``; op ``"sub"``)."""
        return self._combined(other, -1.0, "sub")

    def __mul__(self, factor: Any) -> Direction:
        """``d * k``: every layer (and both means) times the finite number ``k`` (op ``"scale"``);
        the chosen layer and settings are kept."""
        return self._scaled(factor, "scale")

    __rmul__ = __mul__

    def __truediv__(self, factor: Any) -> Direction:
        """``d / k``: ``d * (1 / k)``."""
        if isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor == 0:
            raise DirectionError("cannot divide a direction by 0")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            return NotImplemented
        return self._scaled(1.0 / float(factor), "scale")

    def __neg__(self) -> Direction:
        """``-d``: memory-minus-reasoning (op ``"neg"``)."""
        return self._scaled(-1.0, "neg")

    # -- device --------------------------------------------------------------------------------

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Direction:
        """A copy whose tensors live on ``device`` (metadata unchanged).

        A Direction stays float64 (its class means are statistics, accumulated in float64);
        steering casts ``r̂`` to the model's dtype itself. ``dtype`` is accepted for the familiar
        ``.to(...)`` call but must be ``torch.float64``; for a tensor in another dtype use
        ``d.unit(layer).to(dtype)``.

        Raises:
            DirectionError: a dtype other than float64.
        """
        if dtype is not None and dtype != torch.float64:
            raise DirectionError(
                f"a Direction stays float64 (got dtype={dtype}); steering casts r̂ to the model's "
                "dtype itself; for a vector in that dtype use d.unit(layer).to(dtype)"
            )
        if device is None:
            return self
        return Direction(
            self.vectors.to(device),
            self.mean_reasoning.to(device),
            self.mean_memory.to(device),
            self.n_reasoning,
            self.n_memory,
            dict(self.metadata),
        )

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.vectors.device

    # -- steering ------------------------------------------------------------------------------

    def apply(
        self,
        model: Any,
        *,
        layer: int | None = None,
        alpha: float = 0.1,
        mode: str = "project",
        positions: Any = "all",
        blocks: Sequence[int] | None = None,
    ) -> AbstractContextManager[Any]:
        """Steer ``model`` itself inside a ``with`` block; it is restored on exit, even on error.

        ::

            with liref.apply(model, layer=15, alpha=-0.1, mode="project"):
                out = lirefs.generate(model, prompts)        # steered
            out = lirefs.generate(model, prompts)            # plain again

        The settings mean what they mean in ``lirefs.generate`` and are checked the same way,
        here and now (``lirefs.steer.plan``). Unlike ``lirefs.steered``, which steers a copy and
        leaves ``model`` plain, the edit is stored on ``model`` (``lirefs.steer.applied``) and
        every trace or ``generate`` of it is steered until the block ends; any edits the model
        carried before are put back as they were.
        """
        # the one import of a module above this one: steering is built on directions, and this
        # method is a convenience over it (tests/test_layout.py lists the edge as allowed)
        from . import steer

        given = None if mode == "ablate" else alpha  # ablation takes no alpha
        return steer.applied(model, steer.plan(model, self, layer, given, mode, positions, blocks))

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file (tensors + JSON metadata in its header), atomically."""
        meta = {**self.metadata, "n_reasoning": self.n_reasoning, "n_memory": self.n_memory}
        tensors = {
            "vectors": self.vectors,
            "mean_reasoning": self.mean_reasoning,
            "mean_memory": self.mean_memory,
        }
        return save_tensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path, *, model: Any = None) -> Direction:
        """Read a direction file; with ``model``, refuse it if it was made on another model.

        Raises:
            DirectionError: the file is missing or not a lirefs direction file.
            MetadataMismatchError: another layer convention, or (with ``model``) another model.
        """
        tensors, meta = load_tensors(
            path, required=_TENSORS, error=DirectionError, what="direction"
        )
        path = Path(path)
        check_metadata(meta, what=str(path), kind="direction")
        vectors, mean_r, mean_m = _checked_tensors(tensors, path)
        n_reasoning = _count(meta.pop("n_reasoning", None), "n_reasoning", path)
        n_memory = _count(meta.pop("n_memory", None), "n_memory", path)
        if not isinstance(meta.get("settings") or {}, dict):
            raise DirectionError(f"{path}: settings must be a JSON object; recreate the file")
        best = (meta.get("settings") or {}).get("best_layer")
        if best is not None:
            try:
                residual_index(best, vectors.shape[0] - 1, "this direction has")
            except LayerError as exc:
                raise DirectionError(f"{path}: best_layer {best!r} is unusable ({exc})") from None
        direction = cls(vectors, mean_r, mean_m, n_reasoning, n_memory, meta)
        if model is not None:
            if not meta.get("model"):
                name = (_model_dict(model) or {}).get("name")
                raise MetadataMismatchError(
                    f'{path} records no model ("model": null), so it cannot be checked against '
                    f"{name!r}; rebuild it on that model with Direction.from_activations(..., "
                    "model=model)"
                )
            try:
                direction.check_model(model)
            except MetadataMismatchError as exc:
                raise MetadataMismatchError(
                    str(exc).replace("this direction", str(path), 1)
                ) from None
        return direction

    # -- Hub-ready folders ---------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path, *, report: Any = None) -> Path:
        """Write a Hub-ready folder: ``direction.safetensors``, ``lirefs.json``, ``README.md``.

        ``direction.safetensors`` is the file ``save`` writes (tensors + metadata header);
        ``lirefs.json`` repeats the metadata as plain JSON for browsing; ``README.md`` is a model
        card with the model, data hash, lirefs version and the layer report summary (the
        held-out choice recorded in the metadata, and per-layer AUROC when ``report``, a
        ``LayerReport``, is given). The folder must be new or empty; it is filled through a
        temporary folder, so a failure leaves nothing behind.

        Raises:
            DirectionError: ``folder`` exists and is not an empty folder.
        """
        import json

        target = Path(folder)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise DirectionError(
                f"{target} exists and is not an empty folder; give a new folder (nothing written)"
            )
        with atomic_folder(target) as tmp:
            self.save(tmp / "direction.safetensors")
            meta = {**self.metadata, "n_reasoning": self.n_reasoning, "n_memory": self.n_memory}
            (tmp / "lirefs.json").write_text(
                json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8"
            )
            model = self.metadata.get("model") or {}
            data = self.metadata.get("data") or {}
            settings = self.metadata.get("settings") or {}
            card = card_data(
                model,
                self.n_layers,
                [] if self.chosen_layer is None else [self.chosen_layer],
                settings.get("mode") or "project",
                library_name="lirefs",
                tags=["lirefs", "steering-vector"],
            )
            base = card.base_model or model.get("name", "an unrecorded model")
            lines = [
                "---",
                card.to_yaml(),
                "---",
                "",
                f"# Linear Reasoning Feature for {base}",
                "",
                "Per-layer reasoning-minus-memory mean difference (float64), one vector per "
                f"residual index 0..{self.n_layers} (`l == hidden_states[l]`), d_model "
                f"{self.d_model}.",
                "",
                f"- model: `{model.get('name')}` ({model.get('architecture')}, fingerprint "
                f"`{model.get('fingerprint')}`)",
                f"- data hash: `{data.get('hash')}`; {self.n_reasoning} reasoning and "
                f"{self.n_memory} memory prompts",
                f"- lirefs version: {self.metadata.get('lirefs_version')}",
                f"- layer convention: {self.metadata.get('layer_convention')}",
                "",
                "## Layer report",
                "",
                f"- chosen layer: {self.chosen_layer} (rule: {settings.get('layer_rule')})",
                f"- how: {settings.get('layer_choice', 'not recorded')}",
            ]
            auroc = getattr(report, "auroc", None)
            if auroc is not None:
                lines += ["", "| layer | held-out AUROC | norm |", "|---|---|---|"]
                for layer, value in enumerate(auroc):
                    lines.append(f"| {layer} | {value:.3f} | {self.norm(layer):.3g} |")
            lines += [
                "",
                "## Use",
                "",
                "```python",
                "import lirefs",
                'liref = lirefs.Direction.from_pretrained("this/folder-or-repo")',
                "```",
                "",
            ]
            _write_card(tmp / "README.md", "\n".join(lines))
        return target

    @classmethod
    def from_pretrained(
        cls, repo_id_or_folder: str | Path, *, model: Any = None, revision: str | None = None
    ) -> Direction:
        """Load a ``save_pretrained`` folder, or download one from the Hugging Face Hub.

        A local folder is read as it is; anything else is taken as a Hub repo id and fetched
        with ``huggingface_hub.snapshot_download`` (only the lirefs files). With ``model``, a
        direction made on another model is refused, as in ``load``.

        Raises:
            DirectionError: no ``direction.safetensors`` in the folder, or the Hub could not be
                reached / has no such repo.
            MetadataMismatchError: another layer convention or (with ``model``) another model.
        """
        folder = Path(repo_id_or_folder)
        if not folder.is_dir():
            try:
                from huggingface_hub import snapshot_download

                folder = Path(
                    snapshot_download(
                        str(repo_id_or_folder),
                        revision=revision,
                        allow_patterns=["direction.safetensors", "lirefs.json", "README.md"],
                    )
                )
            except Exception as exc:  # network, auth, missing repo: one clear error
                raise DirectionError(
                    f"{repo_id_or_folder!r} is not a local folder and could not be fetched from "
                    f"the Hugging Face Hub ({type(exc).__name__}: {exc})"
                ) from None
        path = folder / "direction.safetensors"
        if not path.is_file():
            raise DirectionError(
                f"{folder} has no direction.safetensors; make the folder with "
                "Direction.save_pretrained"
            )
        return cls.load(path, model=model)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        token: str | None = None,
        report: Any = None,
        commit_message: str = "Upload lirefs direction",
    ) -> str:
        """Upload a ``save_pretrained`` folder to the Hugging Face Hub; returns the repo URL.

        Creates the repo if needed (``huggingface_hub.HfApi.create_repo(exist_ok=True)``) and
        uploads the folder in one commit. ``token`` defaults to the logged-in one.

        Raises:
            DirectionError: the Hub refused or could not be reached.
        """
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "direction", report=report)
            try:
                url = api.create_repo(repo_id, private=private, exist_ok=True)
                api.upload_folder(
                    repo_id=repo_id, folder_path=str(folder), commit_message=commit_message
                )
            except Exception as exc:
                raise DirectionError(
                    f"could not push to the Hub repo {repo_id!r} ({type(exc).__name__}: {exc})"
                ) from None
        return str(url)

    def __repr__(self) -> str:
        name = (self.metadata.get("model") or {}).get("name", "?")
        return (
            f"Direction(model={name!r}, layers=0..{self.n_layers}, d_model={self.d_model}, "
            f"n_reasoning={self.n_reasoning}, n_memory={self.n_memory})"
        )


def _checked_tensors(
    tensors: dict[str, Any], path: Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A file's ``vectors``/``mean_reasoning``/``mean_memory`` as float64, or ``DirectionError``.

    Each must be a finite floating-point ``[L + 1, d_model]`` tensor (``L >= 1``), all three of one
    shape.
    """
    got = [tensors[name] for name in _TENSORS]
    for name, t in zip(_TENSORS, got, strict=True):
        if not t.is_floating_point() or t.dim() != 2 or t.shape[0] < 2 or t.shape[1] < 1:
            raise DirectionError(
                f"{path}: {name} is {t.dtype} {tuple(t.shape)}, expected a float [L + 1, d_model] "
                "tensor; recreate the file"
            )
        if not torch.isfinite(t).all():
            raise DirectionError(f"{path}: {name} holds NaN or inf; recreate the file")
    if not got[0].shape == got[1].shape == got[2].shape:
        raise DirectionError(
            f"{path}: vectors {tuple(got[0].shape)}, mean_reasoning {tuple(got[1].shape)} and "
            f"mean_memory {tuple(got[2].shape)} disagree; recreate the file"
        )
    vectors, mean_r, mean_m = (t.to(torch.float64) for t in got)
    return vectors, mean_r, mean_m


def card_data(
    model: dict[str, Any],
    n_layers: int,
    layers: Sequence[int],
    mode: str,
    *,
    library_name: str,
    tags: list[str],
) -> Any:
    """``huggingface_hub.ModelCardData`` of a lirefs card: ``base_model`` (the Hub id, also for a
    built-in alias: ``smollm2-135m`` -> ``HuggingFaceTB/SmolLM2-135M-Instruct``), ``library_name``,
    ``tags`` and, under ``lirefs``, the layer convention, the layer map and the mode."""
    from huggingface_hub import ModelCardData

    from .models import hub_id, looks_like_hub_id
    from .store import LAYER_CONVENTION

    base = hub_id(model.get("name"), model.get("repo_id"))
    return ModelCardData(
        base_model=base if base and looks_like_hub_id(base) else None,
        library_name=library_name,
        tags=tags,
        lirefs={
            "layer_convention": LAYER_CONVENTION,
            "layers": layer_map(n_layers, layers, model.get("architecture")),
            "mode": mode,
            "model": model.get("name"),
            "fingerprint": model.get("fingerprint"),
        },
    )


def _write_card(path: Path, text: str) -> None:
    """Write ``text`` through ``huggingface_hub.ModelCard`` (which parses the YAML header)."""
    from huggingface_hub import ModelCard

    ModelCard(text).save(path)


def _tensor_hash(t: torch.Tensor) -> str:
    """sha256 (hex, first 16 chars) of a tensor's float64 bytes."""
    data = t.detach().to("cpu", torch.float64).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _count(value: Any, name: str, path: Path) -> int:
    """A class size from a file's metadata: a whole number >= 1, else ``DirectionError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DirectionError(
            f"{path}: {name} is {value!r}, expected a whole number >= 1; recreate the file"
        )
    return value


def _model_dict(model: Any) -> dict[str, Any] | None:
    if model is None:
        return None
    if isinstance(model, dict):
        return model
    if hasattr(model, "to_dict") and hasattr(model, "fingerprint"):
        return model.to_dict()  # type: ignore[no-any-return]
    from .models import model_info

    return model_info(model).to_dict()
