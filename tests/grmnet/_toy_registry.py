"""Points GRMNet's toy dataset names at a generated root for the length of a test."""

import contextlib

from detectron2.data import DatasetCatalog, MetadataCatalog

TOY_NAMES = ("grmnet_toy_train", "grmnet_toy_val")


@contextlib.contextmanager
def toy_names_at(root):
    """Registers the toy dataset names under ``root``; restores the registration after."""
    from grmnet.data import builtin

    saved_prepare = dict(builtin._PREPARE)
    saved = {}
    for name in TOY_NAMES:
        saved[name] = (DatasetCatalog[name], MetadataCatalog.get(name).as_dict())
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    builtin.register_all_sketchyscene_matching(str(root))
    try:
        yield
    finally:
        for name, (loader, meta) in saved.items():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
            DatasetCatalog.register(name, loader)
            meta.pop("name", None)
            MetadataCatalog.get(name).set(**meta)
        builtin._PREPARE.clear()
        builtin._PREPARE.update(saved_prepare)
