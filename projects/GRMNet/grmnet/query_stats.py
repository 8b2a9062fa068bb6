"""Query types of SketchyScene-Matching expression files, estimated without the masks.

    python -m grmnet.query_stats datasets/sketchyscene/sentence_instance_test.json

See :func:`grmnet.data.query_types.estimate_query_types`.
"""

from .data.categories import SKETCHYSCENE_CATEGORIES
from .data.query_types import CATEGORY, POSITION, category_nouns, estimate_query_types
from .data.sketchyscene import read_expression_file


def main(argv=None):
    """``python -m grmnet.query_stats FILE...``: estimated query types of expression
    files (``sentence_instance_{split}.json``)."""
    import argparse
    from collections import Counter

    parser = argparse.ArgumentParser(description=main.__doc__.split(":")[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    nouns = category_nouns(SKETCHYSCENE_CATEGORIES)
    for path in args.files:
        counts = Counter()
        for entry in read_expression_file(path):
            counts.update(estimate_query_types(entry["sen_instIdx_map"], nouns).values())
        total = sum(counts.values())
        print(
            f"{path}: {total} queries, category suffices {counts[CATEGORY]}, needs position "
            f"{counts[POSITION]} ({100 * counts[POSITION] / max(total, 1):.1f}%), "
            f"no category word {counts[None]}"
        )
    return counts


if __name__ == "__main__":
    main()
