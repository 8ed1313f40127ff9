#!/usr/bin/env bash
# The real-server stage in one command: install NDIF's server (cached), start it on loopback in
# a network namespace serving SmolLM2 on the CPU, run tests/ndif with remote=True against it, and
# ALWAYS stop every process it started.
#
#   bash scripts/ndif/run_suite.sh [extra pytest args]
#
# Env: LIREFS_CLIENT_PYTHON (lirefs' python, default: python), LIREFS_CACHE_DIR (dequantized model
# cache), NDIF_WAIT_S (seconds to wait for each service, default 120; raise it on a loaded
# machine), and those of env.sh. Writes $NDIF_RUN/timings.json (install/start/request times).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=scripts/ndif/env.sh
source "$HERE/env.sh"
CLIENT_PY="${LIREFS_CLIENT_PYTHON:-python}"
export LIREFS_CLIENT_PYTHON="$CLIENT_PY"

t0=$(date +%s.%N)
bash "$HERE/install.sh" || { echo "[ndif] install failed" >&2; exit 1; }
t_install=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

trap 'bash "$HERE/stop.sh"' EXIT INT TERM
bash "$HERE/start.sh" || { echo "[ndif] start failed; logs in $NDIF_RUN/logs" >&2; exit 1; }

t1=$(date +%s.%N)
cd "$REPO"
ip netns exec "$NDIF_NETNS" env \
    LIREFS_NDIF_HOST="http://127.0.0.1:$NDIF_API_PORT" \
    LIREFS_NDIF_TIMINGS="$NDIF_RUN/request_timings.json" \
    HF_HOME="$NDIF_RUN/hf" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LIREFS_PROGRESS=0 \
    "$CLIENT_PY" -m pytest tests/ndif -p no:cacheprovider -ra "$@"
status=$?
t_tests=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

"$CLIENT_PY" - "$NDIF_RUN" "$t_install" "$t_tests" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
out = {"install_s": float(sys.argv[2]), "tests_s": float(sys.argv[3])}
for name in ("timings.json", "request_timings.json"):
    if (run / name).is_file():
        out.update(json.loads((run / name).read_text()))
(run / "timings.json").write_text(json.dumps(out, indent=2) + "\n")
print("[ndif] timings:", json.dumps(out))
PY
exit $status
