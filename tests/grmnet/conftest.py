import pytest


@pytest.fixture(scope="session")
def grm_toy_root(tmp_path_factory):
    """A datasets root holding the generated toy dataset (shared by the tests of a session)."""
    from grmnet.data.toy import generate_toy_dataset

    root = tmp_path_factory.mktemp("grm_datasets")
    generate_toy_dataset(str(root / "toy" / "grmnet"), seed=0, num_train=6, num_val=3, size=128)
    (root / "toy" / "grmnet" / ".complete").touch()
    return root
