import pytest

TINY_OPTS = [
    "MODEL.DEVICE", "cpu",
    "MODEL.OVERHEAD_FUSION.QUALITY_BASE_WIDTH", "4",
    "MODEL.OVERHEAD_FUSION.SEG_BASE_WIDTH", "4",
    "MODEL.OVERHEAD_FUSION.UNET_DEPTH", "2",
    "INPUT.OVERHEAD_FUSION.IMAGE_SIZE", "32",
    "SOLVER.IMS_PER_BATCH", "2",
    "DATALOADER.NUM_WORKERS", "0",
]  # fmt: skip


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads; on a shared CPU they lose a lot."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """A datasets root holding the generated toy data (generated once per test run)."""
    return tmp_path_factory.mktemp("overhead_fusion_datasets")


@pytest.fixture
def tiny_cfg(toy_root, tmp_path, monkeypatch):
    """demo.yaml shrunk to a 32 px, width-4 model, on toy data under a temporary root."""
    from d2common.testing import plugin_cfg

    monkeypatch.setenv("DETECTRON2_DATASETS", str(toy_root))

    def make(config="configs/OverheadFusion/demo.yaml", opts=()):
        return plugin_cfg(config, TINY_OPTS + ["OUTPUT_DIR", str(tmp_path)] + list(opts))

    return make


@pytest.fixture
def tiny_opts():
    """Config overrides of a tiny CPU model (``KEY VALUE`` list)."""
    return list(TINY_OPTS)
