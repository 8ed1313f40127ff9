#!/usr/bin/env bash
# Stop or start only the API of a running local NDIF stack (tests use it to cut the server off
# in the middle of a run and bring it back):  bash scripts/ndif/api.sh stop|start
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/ndif/env.sh
source "$HERE/env.sh"
# shellcheck source=scripts/ndif/lib.sh
source "$HERE/lib.sh"

export NDIF_REDIS_URL="redis://127.0.0.1:$NDIF_REDIS_PORT" NDIF_RAY_ADDRESS="ray://127.0.0.1:10001"
export NDIF_MODEL_IMPORT_PATH="cpu_actor.CPUModelActor" NDIF_DEFAULT_DTYPE=float32
export NDIF_API_WORKERS=1 GRPC_ENABLE_FORK_SUPPORT=0 RAY_USAGE_STATS_ENABLED=0
export HF_HOME="$NDIF_RUN/hf" HF_HUB_OFFLINE=1 PYTHONPATH="$HERE"
unset NDIF_POSTGRES_URL NDIF_API_KEY

case "${1:-}" in
    stop)
        grep '^api ' "$NDIF_RUN/pids" | while read -r _ pid; do kill_group "$pid"; done
        sed -i '/^api /d' "$NDIF_RUN/pids"
        ;;
    start)
        start_api
        ;;
    *)
        echo "usage: $0 stop|start" >&2; exit 2 ;;
esac
