#!/usr/bin/env bash
# Prints the path of a CPython 3.10 interpreter, or explains why none was found.
# Order: $PYTHON, python3.10 on PATH, pyenv's installations.
set -euo pipefail

is_py310() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null
}

if [[ -n "${PYTHON:-}" ]]; then
    if is_py310 "$PYTHON"; then echo "$PYTHON"; exit 0; fi
    echo "error: PYTHON=$PYTHON is not a working CPython 3.10 interpreter" >&2
    exit 1
fi
if command -v python3.10 >/dev/null 2>&1 && is_py310 "$(command -v python3.10)"; then
    command -v python3.10; exit 0
fi
pyenv_root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
for candidate in $(ls -d "$pyenv_root"/versions/3.10.*/bin/python 2>/dev/null | sort -V -r); do
    if is_py310 "$candidate"; then echo "$candidate"; exit 0; fi
done
cat >&2 <<MSG
error: no CPython 3.10 interpreter found.
  The prebuilt detectron2 wheel (sal-detectron2) exists for CPython 3.10 only.
  Looked at: \$PYTHON (unset), python3.10 on PATH, $pyenv_root/versions/3.10.*/bin/python.
  Install Python 3.10 (e.g. 'pyenv install 3.10') or call: make PYTHON=/path/to/python3.10 ...
MSG
exit 1
