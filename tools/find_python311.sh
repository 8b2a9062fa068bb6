#!/usr/bin/env bash
# Prints the path of a CPython 3.11 interpreter (the current stack's), or explains why none was found.
exec "$(dirname "$0")/find_python.sh" 3.11 \
    "The current stack is tested with CPython 3.11." \
    "make STACK=current PYTHON=/path/to/python3.11 ... (another Python with its own torch: OWN_TORCH=1)"
