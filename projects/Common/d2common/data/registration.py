from typing import Callable, Dict, List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .validation import LoadReport

_LOAD_REPORTS: Dict[str, LoadReport] = {}


def register_dataset_once(name: str, loader: Callable[[], List[dict]], **metadata) -> None:
    """Registers ``name`` in detectron2's catalogs unless it is already registered.

    Project packages register their datasets at import; importing a package twice (tests,
    reloaded modules) must not raise. The loader's :class:`~.validation.LoadReport` (records
    found, excluded and why) is kept for the evaluators: see :func:`get_load_report`.
    """
    if name in DatasetCatalog.list():
        return
    DatasetCatalog.register(name, _reporting_loader(name, loader))
    MetadataCatalog.get(name).set(**metadata)


def _reporting_loader(name: str, loader: Callable[[], List[dict]]) -> Callable[[], List[dict]]:
    def load():
        records = loader()
        record_load_report(name, records)
        return records

    return load


def record_load_report(name: str, records: List[dict]) -> LoadReport:
    """Stores what loading ``name`` gave: the records' own report, or "all candidates kept"."""
    report = getattr(records, "load_report", None)
    if report is None:
        report = LoadReport(source=name, num_candidates=len(records))
    report.record_ids = [record_key(r) for r in records]
    _LOAD_REPORTS[name] = report
    return report


def record_key(record: dict) -> str:
    """The key an evaluator knows a record by: its ``image_id``, else its ``file_name``."""
    return str(record.get("image_id", record.get("file_name")))


def get_load_report(name: str) -> Optional[LoadReport]:
    """The report of the last load of dataset ``name`` in this process, or None."""
    return _LOAD_REPORTS.get(name)
