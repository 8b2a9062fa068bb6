import pytest


@pytest.fixture(scope="session")
def grm_toy_root(tmp_path_factory):
    """A datasets root holding the generated toy dataset (generated once per test run)."""
    from grmnet.data.toy import generate_toy_dataset

    root = tmp_path_factory.mktemp("grm_datasets")
    generate_toy_dataset(str(root / "toy" / "grmnet"), seed=0, num_train=6, num_val=3, size=128)
    (root / "toy" / "grmnet" / ".complete").touch()
    return root


@pytest.fixture
def registered_toy(grm_toy_root):
    """Points the toy dataset names at the generated toy root."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from grmnet.data import builtin
    from grmnet.data.builtin import register_all_sketchyscene_matching

    saved_prepare = dict(builtin._PREPARE)
    saved = {}
    for name in ("grmnet_toy_train", "grmnet_toy_val"):
        saved[name] = (DatasetCatalog[name], MetadataCatalog.get(name).as_dict())
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_all_sketchyscene_matching(str(grm_toy_root))
    yield grm_toy_root
    for name, (loader, meta) in saved.items():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
        DatasetCatalog.register(name, loader)
        meta.pop("name", None)
        MetadataCatalog.get(name).set(**meta)
    builtin._PREPARE.update(saved_prepare)
