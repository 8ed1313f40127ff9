# Shared settings of the local NDIF stack (sourced by the other scripts in this folder).
# Everything lives outside the repository; override any of these in the environment.
NDIF_HOME="${LIREFS_NDIF_HOME:-$HOME/.cache/lirefs-ndif}"
NDIF_VENV="${LIREFS_NDIF_VENV:-$NDIF_HOME/venv}"
NDIF_RUN="${LIREFS_NDIF_RUN:-$NDIF_HOME/run}"          # pids, logs, HF cache of one run
NDIF_NETNS="${LIREFS_NDIF_NETNS:-lirefs-ndif}"          # loopback-only network namespace
NDIF_REDIS_PORT="${LIREFS_NDIF_REDIS_PORT:-6399}"
NDIF_API_PORT="${LIREFS_NDIF_API_PORT:-8001}"
NDIF_REPO_ID="${LIREFS_NDIF_REPO_ID:-HuggingFaceTB/SmolLM2-135M-Instruct}"
export NDIF_HOME NDIF_VENV NDIF_RUN NDIF_NETNS NDIF_REDIS_PORT NDIF_API_PORT NDIF_REPO_ID
