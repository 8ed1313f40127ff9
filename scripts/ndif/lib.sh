# Helpers of the local NDIF scripts (sourced after env.sh).

# Run a command inside the stack's namespace (directly when already inside it).
in_ns() {
    if [[ "$(ip netns identify $$ 2>/dev/null)" == "$NDIF_NETNS" ]]; then
        "$@"
    else
        ip netns exec "$NDIF_NETNS" "$@"
    fi
}

# spawn NAME CMD...: start CMD in the namespace as the leader of a new process group; log to
# $NDIF_RUN/logs/NAME.log; record "NAME PID" in $NDIF_RUN/pids (stop.sh kills each group).
spawn() {
    local name="$1"; shift
    # A simple command (not a function) in the background, so $! is the process itself: `ip netns
    # exec` and `setsid` both exec in place, and setsid makes it the leader of a new group.
    if [[ "$(ip netns identify $$ 2>/dev/null)" == "$NDIF_NETNS" ]]; then
        setsid "$@" > "$NDIF_RUN/logs/$name.log" 2>&1 < /dev/null &
    else
        ip netns exec "$NDIF_NETNS" setsid "$@" > "$NDIF_RUN/logs/$name.log" 2>&1 < /dev/null &
    fi
    echo "$name $!" >> "$NDIF_RUN/pids"
}

# wait_for WHAT SECONDS CMD...: poll CMD every second until it succeeds, or fail.
wait_for() {
    local what="$1" limit="$2"; shift 2
    local start=$SECONDS
    until in_ns "$@" > /dev/null 2>&1; do
        if (( SECONDS - start > limit )); then
            echo "[ndif] $what not ready after ${limit} s; logs in $NDIF_RUN/logs" >&2
            return 1
        fi
        sleep 1
    done
}

# Seconds since a `date +%s.%N` stamp, one decimal.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The API (gunicorn + its queue dispatcher); separate so tests can stop and restart it alone.
start_api() {
    spawn api "$NDIF_VENV/bin/gunicorn" --config python:ndif.services.api.gunicorn_conf \
        --bind "127.0.0.1:$NDIF_API_PORT" ndif.services.api.app:app
    # /status answers only once the API's dispatcher has (re)connected to Ray (503 before).
    wait_for "api" "${NDIF_WAIT_S:-120}" "$NDIF_VENV/bin/python" -c "
import httpx; httpx.get('http://127.0.0.1:$NDIF_API_PORT/status', timeout=30).raise_for_status()"
}

# Kill one recorded process group (TERM, then KILL after a grace period).
kill_group() {
    local pid="$1"
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for _ in $(seq 1 20); do
        kill -0 -- "-$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
}
