# Sourced by scripts/serve and scripts/test: make sure $VENV exists with asgibridge[test].
# VENV defaults to .venv at the repository root; CI points it at its own fresh one.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV and installing asgibridge[test] (first run only)..." >&2
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
fi
cd "$ROOT"
