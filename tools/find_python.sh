#!/usr/bin/env bash
# Usage: find_python.sh X.Y "why this version" "how to pass another interpreter"
# Prints the path of a CPython X.Y interpreter, or explains why none was found.
# Order: $PYTHON, pythonX.Y on PATH, pyenv's installations.
set -euo pipefail
version="$1"; why="$2"; hint="$3"

is_version() {
    "$1" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$version' else 1)" \
        2>/dev/null
}

if [[ -n "${PYTHON:-}" ]]; then
    if is_version "$PYTHON"; then echo "$PYTHON"; exit 0; fi
    echo "error: PYTHON=$PYTHON is not a working CPython $version interpreter" >&2
    echo "  ($hint)" >&2
    exit 1
fi
if command -v "python$version" >/dev/null 2>&1 && is_version "$(command -v "python$version")"; then
    command -v "python$version"; exit 0
fi
pyenv_root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
for candidate in $(ls -d "$pyenv_root"/versions/"$version".*/bin/python 2>/dev/null | sort -V -r); do
    if is_version "$candidate"; then echo "$candidate"; exit 0; fi
done
cat >&2 <<MSG
error: no CPython $version interpreter found.
  $why
  Looked at: \$PYTHON (unset), python$version on PATH, $pyenv_root/versions/$version.*/bin/python.
  Install Python $version (e.g. 'pyenv install $version') or call: $hint
MSG
exit 1
