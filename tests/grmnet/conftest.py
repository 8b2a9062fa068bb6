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
    # Imported here: the op tests in this folder run on hosts without detectron2.
    from ._toy_registry import toy_names_at

    with toy_names_at(grm_toy_root):
        yield grm_toy_root
