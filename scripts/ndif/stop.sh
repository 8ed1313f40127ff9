#!/usr/bin/env bash
# Stop everything scripts/ndif/start.sh started: each recorded process group, then any process
# still inside the stack's network namespace (only this stack runs there), then the namespace.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/ndif/env.sh
source "$HERE/env.sh"
# shellcheck source=scripts/ndif/lib.sh
source "$HERE/lib.sh"

if [[ -f "$NDIF_RUN/pids" ]]; then
    # Reverse start order: API, controller, Ray, Redis.
    tac "$NDIF_RUN/pids" | while read -r name pid; do
        [[ "$name" == netns ]] && continue
        kill_group "$pid"
    done
fi
if ip netns list 2>/dev/null | grep -qw "$NDIF_NETNS"; then
    # Ray's workers leave their process group; whatever is left in the namespace is ours.
    for _ in 1 2 3; do
        pids="$(ip netns pids "$NDIF_NETNS" 2>/dev/null)"
        [[ -z "$pids" ]] && break
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null; sleep 1
    done
    pids="$(ip netns pids "$NDIF_NETNS" 2>/dev/null)"
    # shellcheck disable=SC2086
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null
    ip netns delete "$NDIF_NETNS" 2>/dev/null || true
fi
rm -f "$NDIF_RUN/pids"
echo "[ndif] stopped"
