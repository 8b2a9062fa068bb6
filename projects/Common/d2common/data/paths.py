import os


def datasets_root() -> str:
    """The datasets root: ``$DETECTRON2_DATASETS``, else ``./datasets`` (detectron2's rule)."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
