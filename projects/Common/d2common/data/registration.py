from typing import Callable, List

from detectron2.data import DatasetCatalog, MetadataCatalog


def register_dataset_once(name: str, loader: Callable[[], List[dict]], **metadata) -> None:
    """Registers ``name`` in detectron2's catalogs unless it is already registered.

    Project packages register their datasets at import; importing a package twice (tests,
    reloaded modules) must not raise.
    """
    if name in DatasetCatalog.list():
        return
    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(**metadata)
