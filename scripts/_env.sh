# Shared by scripts/demo and scripts/test: create (or reuse) the project's virtualenv.
# The venv is rebuilt when pyproject.toml changes (a stamp keyed on its hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REHAB_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "[rehab] Python 3.11 is needed (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
STAMP="$VENV/.rehab-stamp"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-${REHAB_EXTRAS:-dev,bench}"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "[rehab] preparing the environment in $VENV ..." >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q -e "$ROOT[${REHAB_EXTRAS:-dev,bench}]" >&2
    echo "$WANT" > "$STAMP"
fi
# Offline machines: Prefect must not phone home.
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PREFECT_UI_ENABLED="${PREFECT_UI_ENABLED:-true}"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
