#!/usr/bin/env bash
# The GPU check (see benchmarks/gpu_check.py): one command, under 8 minutes on one GPU.
#   bash benchmarks/gpu_check.sh [--json PATH]     on a CUDA machine
#   bash benchmarks/gpu_check.sh --dry-run         anywhere (tiny, CPU): checks the script
# Uses ./.venv when there is one (python3 run.py test makes it), else the python on PATH;
# installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m benchmarks.gpu_check "$@"
