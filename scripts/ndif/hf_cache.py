"""Build the Hugging Face cache folder that the local NDIF server and its clients read offline.

NDIF loads a model by its Hub id through the ordinary HF cache. With no Hub, this makes
``$HF_HOME/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/`` (``refs/main`` + one snapshot whose
files link to lirefs' dequantized SmolLM2 folder) so that ``HF_HUB_OFFLINE=1`` loads of the real id
work on both sides. Prints the model's size in bytes (what the deploy call is told).

Run with lirefs' own Python: ``python scripts/ndif/hf_cache.py HF_HOME [REPO_ID]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SNAPSHOT = "0" * 40  # any commit-like name: refs/main points at it


def build(hf_home: Path, repo_id: str) -> int:
    """Create (or refresh) the cache entry for ``repo_id``; return the weights' size in bytes."""
    from lirefs.models import BUILTIN_MODELS, smollm2_folder

    known = {v[2] for v in BUILTIN_MODELS.values()}
    if repo_id not in known:
        raise SystemExit(
            f"repo id {repo_id!r} has no offline copy here; use one of {sorted(known)}"
        )
    folder = smollm2_folder()
    entry = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = entry / "snapshots" / SNAPSHOT
    snapshot.mkdir(parents=True, exist_ok=True)
    (entry / "refs").mkdir(exist_ok=True)
    (entry / "refs" / "main").write_text(SNAPSHOT)
    size = 0
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        link = snapshot / f.name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(f, link)
        if f.suffix == ".safetensors":
            size += f.stat().st_size
    return size


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    repo = sys.argv[2] if len(sys.argv) == 3 else "HuggingFaceTB/SmolLM2-135M-Instruct"
    print(build(Path(sys.argv[1]), repo))
