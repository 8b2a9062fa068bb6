#!/usr/bin/env bash
# Prints the path of a CPython 3.11 interpreter (the current stack's), or explains why none was
# found. Order: $PYTHON, python3.11 on PATH, pyenv's installations.
set -euo pipefail

is_py311() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null
}

if [[ -n "${PYTHON:-}" ]]; then
    if is_py311 "$PYTHON"; then echo "$PYTHON"; exit 0; fi
    echo "error: PYTHON=$PYTHON is not a working CPython 3.11 interpreter" >&2
    echo "  (another Python with its own torch: make ... STACK=current OWN_TORCH=1 PYTHON=...)" >&2
    exit 1
fi
if command -v python3.11 >/dev/null 2>&1 && is_py311 "$(command -v python3.11)"; then
    command -v python3.11; exit 0
fi
pyenv_root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
for candidate in $(ls -d "$pyenv_root"/versions/3.11.*/bin/python 2>/dev/null | sort -V -r); do
    if is_py311 "$candidate"; then echo "$candidate"; exit 0; fi
done
cat >&2 <<MSG
error: no CPython 3.11 interpreter found.
  The current stack is tested with CPython 3.11.
  Looked at: \$PYTHON (unset), python3.11 on PATH, $pyenv_root/versions/3.11.*/bin/python.
  Install Python 3.11 (e.g. 'pyenv install 3.11') or call: make STACK=current PYTHON=/path/to/python3.11 ...
MSG
exit 1
