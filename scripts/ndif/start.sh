#!/usr/bin/env bash
# Start a local NDIF server (Redis, Ray, controller, API) serving SmolLM2 on the CPU, on loopback
# inside a network namespace of its own. Stop it with scripts/ndif/stop.sh (always).
#
#   bash scripts/ndif/start.sh        # needs: scripts/ndif/install.sh done, root (ip netns)
#
# Writes pids, logs and timings under $NDIF_RUN (see env.sh); clients must run inside the same
# namespace:  ip netns exec lirefs-ndif env NDIF_HOST=http://127.0.0.1:8001 HF_HOME=... python ...
# (`scripts/ndif/client_env.sh` prints that environment).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/ndif/env.sh
source "$HERE/env.sh"
# shellcheck source=scripts/ndif/lib.sh
source "$HERE/lib.sh"

CLIENT_PY="${LIREFS_CLIENT_PYTHON:-python}"
[[ -x "$NDIF_VENV/bin/python" ]] || { echo "[ndif] no server venv at $NDIF_VENV: run scripts/ndif/install.sh" >&2; exit 1; }
if [[ -f "$NDIF_RUN/pids" && -s "$NDIF_RUN/pids" ]]; then
    echo "[ndif] a stack seems to be running ($NDIF_RUN/pids); run scripts/ndif/stop.sh first" >&2
    exit 1
fi
rm -rf "$NDIF_RUN"
mkdir -p "$NDIF_RUN/logs" "$NDIF_RUN/hf"
: > "$NDIF_RUN/pids"
t0=$(date +%s.%N)

# Loopback-only network namespace: nothing started here can reach or be reached from outside.
if ! ip netns list | grep -qw "$NDIF_NETNS"; then
    ip netns add "$NDIF_NETNS"
fi
ip netns exec "$NDIF_NETNS" ip link set lo up
echo "netns $NDIF_NETNS" >> "$NDIF_RUN/pids"

# Offline HF cache with the real repo id, linking lirefs' dequantized SmolLM2 folder.
SIZE_BYTES="$("$CLIENT_PY" "$HERE/hf_cache.py" "$NDIF_RUN/hf" "$NDIF_REPO_ID")"
echo "$SIZE_BYTES" > "$NDIF_RUN/size_bytes"

export HF_HOME="$NDIF_RUN/hf" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export NDIF_REDIS_URL="redis://127.0.0.1:$NDIF_REDIS_PORT"
export NDIF_RAY_ADDRESS="ray://127.0.0.1:10001"
export RAY_ADDRESS="127.0.0.1:6379"
export NDIF_MODEL_IMPORT_PATH="cpu_actor.CPUModelActor"
export NDIF_DEFAULT_DTYPE=float32 NDIF_API_WORKERS=1 GRPC_ENABLE_FORK_SUPPORT=0
export RAY_USAGE_STATS_ENABLED=0 OMP_NUM_THREADS="${LIREFS_NDIF_THREADS:-2}"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
unset NDIF_POSTGRES_URL NDIF_API_KEY
BIN="$NDIF_VENV/bin"

spawn redis "$(command -v redis-server)" --bind 127.0.0.1 --port "$NDIF_REDIS_PORT" --save "" --appendonly no
wait_for "redis" 30 "$BIN/python" -c "import redis; redis.Redis(port=$NDIF_REDIS_PORT).ping()"

spawn ray "$BIN/ray" start --head --block --node-ip-address=127.0.0.1 --port=6379 \
    --num-cpus=2 --num-gpus=1 --object-store-memory=300000000 \
    --resources='{"cuda_memory_bytes": 8000000000, "cpu_memory_bytes": 16000000000, "head": 10}' \
    --include-dashboard=true --dashboard-host=127.0.0.1 --ray-client-server-port=10001 \
    --temp-dir="$NDIF_RUN/ray" --disable-usage-stats
wait_for "ray" "${NDIF_WAIT_S:-120}" "$BIN/ray" status --address=127.0.0.1:6379

spawn controller "$BIN/python" -m ndif.services.ray.deployments.controller.controller
wait_for "controller actor" "${NDIF_WAIT_S:-120}" "$BIN/python" -c "
import ray; ray.init(address='127.0.0.1:6379', namespace='NDIF', logging_level='error')
from ndif.common.providers.ray import get_controller_actor_handle
get_controller_actor_handle()"

start_api
t_services=$(elapsed "$t0")
echo "[ndif] services up in ${t_services} s"

in_ns "$BIN/python" "$HERE/deploy.py" "$NDIF_REPO_ID" "$SIZE_BYTES" > "$NDIF_RUN/logs/deploy.log" 2>&1 \
    || { tail -20 "$NDIF_RUN/logs/deploy.log" >&2; echo "[ndif] deploy failed" >&2; exit 1; }
t_deployed=$(elapsed "$t0")
echo "[ndif] $NDIF_REPO_ID deployed at ${t_deployed} s"
printf '{"services_up_s": %s, "model_deployed_s": %s}\n' "$t_services" "$t_deployed" > "$NDIF_RUN/timings.json"
