#!/usr/bin/env bash
# Install NDIF's server (PyPI package `ndif`) into its own virtual environment, outside the repo.
#
#   bash scripts/ndif/install.sh            # idempotent: a second run only checks the stamp
#
# Env:
#   LIREFS_NDIF_HOME    where the venv lives (default ~/.cache/lirefs-ndif)
#   LIREFS_NDIF_PYTHON  interpreter for the venv (default: python3.11, the version of the CPU torch
#                       wheel available offline; `ndif` declares >=3.12 but runs on 3.11, see
#                       docs/remote.md)
# The server's nnsight is pinned to the client's version (NDIF misreads requests from other
# versions), and transformers to 5.22.0 (5.23+ breaks nnsight 0.8.1's meta loading on the server).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/ndif/env.sh
source "$HERE/env.sh"

CLIENT_PY="${LIREFS_CLIENT_PYTHON:-python}"
NNSIGHT_VERSION="$("$CLIENT_PY" -c 'import importlib.metadata as m; print(m.version("nnsight"))')"
TORCH_VERSION="${LIREFS_NDIF_TORCH:-2.13.0}"
NDIF_VERSION="${LIREFS_NDIF_VERSION:-0.1.2}"
TRANSFORMERS_VERSION="5.22.0"
STAMP_TEXT="ndif=$NDIF_VERSION nnsight=$NNSIGHT_VERSION torch=$TORCH_VERSION transformers=$TRANSFORMERS_VERSION"
STAMP="$NDIF_VENV/.lirefs-stamp"

start=$(date +%s)
if ! command -v redis-server >/dev/null 2>&1; then
    echo "[ndif-install] installing redis-server (Debian package)"
    if ! apt-get install -y -q redis-server >/dev/null 2>&1; then
        apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null
    fi
fi

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
    echo "[ndif-install] server venv up to date at $NDIF_VENV ($STAMP_TEXT)"
    exit 0
fi

PY="${LIREFS_NDIF_PYTHON:-}"
if [[ -z "$PY" ]]; then
    for cand in python3.11 "$HOME/.pyenv/versions/3.11.7/bin/python"; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
            PY="$cand"; break
        fi
    done
fi
[[ -n "$PY" ]] || { echo "[ndif-install] no python3.11 found; set LIREFS_NDIF_PYTHON" >&2; exit 1; }

echo "[ndif-install] creating $NDIF_VENV with $("$PY" --version)"
rm -rf "$NDIF_VENV"
mkdir -p "$(dirname "$NDIF_VENV")"
"$PY" -m venv "$NDIF_VENV"
PIP=("$NDIF_VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" "torch==$TORCH_VERSION"
# `ndif` itself without its Python check; its dependencies (ndif[api,ray]) with theirs.
"${PIP[@]}" --no-deps --ignore-requires-python "ndif==$NDIF_VERSION"
"${PIP[@]}" "torch==$TORCH_VERSION" "nnsight==$NNSIGHT_VERSION" \
    "transformers==$TRANSFORMERS_VERSION" pydantic redis click python-dotenv pyyaml boto3 \
    fastapi "uvicorn[standard]" gunicorn python-multipart "ray[default]" accelerate numpy \
    zstandard peft
"$NDIF_VENV/bin/python" -c 'import ndif, nnsight, ray, torch, transformers'
echo "$STAMP_TEXT" > "$STAMP"
echo "[ndif-install] done in $(( $(date +%s) - start )) s ($STAMP_TEXT)"
