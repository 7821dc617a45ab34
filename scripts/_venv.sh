# Sourced by scripts/serve and scripts/test: a project virtualenv with loyalty
# installed from this checkout (editable). Re-running is cheap when nothing changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "loyalty needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  rm -f .venv/.loyalty-installed-*  # a re-created venv has nothing installed yet
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# Reinstall only when the project's declared dependencies changed.
stamp=.venv/.loyalty-installed-$1
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$2"
  touch "$stamp"
fi
