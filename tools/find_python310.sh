#!/usr/bin/env bash
# Prints the path of a CPython 3.10 interpreter (the pinned stack's), or explains why none was found.
exec "$(dirname "$0")/find_python.sh" 3.10 \
    "The prebuilt detectron2 wheel (sal-detectron2) exists for CPython 3.10 only." \
    "make PYTHON=/path/to/python3.10 ..."
