"""Deploy one model on the local NDIF server and wait until its replica serves.

Run with the NDIF server's Python, inside the stack's network namespace (``start.sh`` does)::

    python scripts/ndif/deploy.py REPO_ID SIZE_BYTES

The exact model key, dtype and size are given so that nothing asks the Hub (offline). NDIF's
``deploy`` blocks until the replica's actor is ready, or raises why it never will be.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    repo_id, size = sys.argv[1], int(sys.argv[2])
    from ndif.cli.lib.deploy import deploy

    key = "nnsight.modeling.transformers.TransformersModel:" + json.dumps(
        {"repo_id": repo_id, "revision": None, "task": "text-generation"}
    )
    started = time.time()
    result = deploy(
        [
            {
                "checkpoint": repo_id,
                "model_key": key,
                "size_bytes": size,
                "dtype": "float32",
                "task": "text-generation",
            }
        ],
        on_message=lambda line: print(f"[deploy] {line.strip()}", flush=True),
    )
    failed = [
        d for d in result.get("deployments", []) if d.get("error") or d.get("status") != "READY"
    ]
    if failed:
        raise SystemExit(f"[deploy] failed: {failed}")
    print(f"[deploy] {repo_id} ready in {time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
