"""Generic figure helpers: a new figure on an Agg canvas, and an atomic PNG writer.

matplotlib is an optional extra (``pip install 'lirefs[plots]'``); it is imported only when a figure
is made, and its absence is the one ``PlotsUnavailableError``. Figures are plain
``matplotlib.figure.Figure`` objects rendered by the Agg canvas (no pyplot state, no display
needed), and every PNG is written atomically: a crash never leaves a partial image behind. The
report figures (``lirefs.analysis.plots``) and the evaluation figures (``lirefs.evaluation.plots``)
are all drawn with these two helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import PlotsUnavailableError
from .store import atomic_path

__all__ = ["PlotsUnavailableError", "figure", "save_figure"]


def figure(width: float = 7.0, height: float = 4.5) -> Any:
    """A new ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches on an Agg canvas.

    No pyplot state is touched and no display is needed, so figures can be drawn from any thread
    or server. Use it with ``save_figure`` for every lirefs figure.

    Raises:
        PlotsUnavailableError: matplotlib (the ``plots`` extra) is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailableError(
            "plots need matplotlib, which is not installed; run: pip install 'lirefs[plots]'"
        ) from None
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and return ``path``.

    The image is drawn into a temporary file beside ``path`` and renamed into place, so a crash
    never leaves a partial PNG (the temporary file's suffix is not .png).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
