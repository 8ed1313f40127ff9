"""Running traces: where they run (``Remote``) and the one batched-trace loop (``BatchRunner``).

Every module that sends batches of prompts through a model (collection, steered generation, the
evaluation's scoring) runs them here: each batch's inputs go to the model's device, its trace runs
locally or through ``lirefs.ndif.run_remote`` (retries, clear errors, results loaded by the safe
unpickler of ``lirefs.ndif.safe_results``), and the progress bar advances by its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .batching import Batch, input_device
from .console import progress_bar
from .ndif import check_remote, resolve_remote, run_remote, trace_kwargs

__all__ = ["BatchRunner", "Remote", "batch_runner"]

T = TypeVar("T")


@dataclass(frozen=True)
class Remote:
    """Where a run's traces go, decided once per call from the model and the user's ``remote=``.

    Attributes:
        setting: the ``remote=`` value nnsight and ``lirefs.ndif`` take: ``False`` (run here),
            ``True`` (NDIF) or ``"local"`` (nnsight's in-process remote path).
    """

    setting: bool | str = False

    @classmethod
    def of(cls, model: Any, remote: object = None) -> Remote:
        """The ``Remote`` of a call: an explicit ``remote`` (a ``Remote``, ``False``, ``True`` or
        ``"local"``) wins, ``None`` takes the model's own (``load_model(remote=...)``).

        Raises:
            RemoteError: ``remote`` is none of those.
        """
        if isinstance(remote, Remote):
            return remote
        return cls(resolve_remote(model, remote))

    def __post_init__(self) -> None:
        object.__setattr__(self, "setting", check_remote(self.setting))

    @property
    def local(self) -> bool:
        """Runs here, without any request (``remote=False``)."""
        return self.setting is False

    @property
    def ndif(self) -> bool:
        """Goes to an NDIF server (``remote=True``)."""
        return self.setting is True

    @property
    def inprocess(self) -> bool:
        """nnsight's in-process remote path (``remote="local"``): serialised like a request."""
        return self.setting == "local"

    def trace_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``model.trace``/``model.generate`` (prepares a remote run)."""
        return trace_kwargs(self.setting)


class BatchRunner:
    """The batched-trace loop of one run: device placement, local/remote run, progress.

    Made by ``batch_runner`` (which owns the progress bar). ``run`` sends one trace; ``each``
    runs one trace per batch.
    """

    def __init__(self, model: Any, remote: Remote, bar: Any) -> None:
        self.model = model
        self.remote = remote
        self.bar = bar
        self.device = input_device(model)

    def inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``batch.inputs`` on the model's input device."""
        return {k: v.to(self.device) for k, v in batch.inputs.items()}

    def run(self, trace: Callable[[dict[str, Any]], T], rows: int, what: str) -> T:
        """Run ``trace(kwargs)`` here or remotely, as ``self.remote`` says, then advance the
        progress bar by ``rows``.

        ``trace`` opens and closes the whole trace with ``**kwargs`` (``Remote.trace_kwargs``,
        prepared once before the first attempt); a retried remote request calls it again.
        """
        kwargs = self.remote.trace_kwargs()
        out = run_remote(
            lambda: trace(kwargs), remote=self.remote.setting, batch_size=rows, what=what
        )
        self.bar.advance(rows)
        return out

    def each(
        self,
        batches: Iterable[Batch],
        trace: Callable[[Batch, dict[str, torch.Tensor], dict[str, Any]], T],
        what: str = "a batch of {b} prompts",
    ) -> Iterator[tuple[Batch, T]]:
        """``(batch, trace(batch, inputs, kwargs))`` per batch, ``inputs`` on the model's device;
        ``what`` names a batch of ``{b}`` rows in remote messages."""
        for batch in batches:
            inputs = self.inputs(batch)
            b = len(batch.index)
            out = self.run(
                lambda kwargs: trace(batch, inputs, kwargs),  # noqa: B023  (runs at once)
                b,
                what.format(b=b),
            )
            yield batch, out


@contextmanager
def batch_runner(
    model: Any,
    remote: Remote,
    label: str,
    total: int,
    progress: bool | None,
    start: str | None = None,
) -> Iterator[BatchRunner]:
    """A ``BatchRunner`` whose progress bar is called ``label`` and counts ``total`` rows;
    ``start`` is the stage line printed first (``lirefs.console.progress_bar``)."""
    with progress_bar(label, total, progress, start=start) as bar:
        yield BatchRunner(model, remote, bar)
