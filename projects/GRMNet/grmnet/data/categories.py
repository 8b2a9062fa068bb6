"""SketchyScene's 46 categories (the order of ``colorMapC46.mat``; CLASS_GT ids are 1-based)."""

SKETCHYSCENE_CATEGORIES = [
    "airplane", "apple", "balloon", "banana", "basket", "bee", "bench", "bicycle", "bird",
    "bottle", "bucket", "bus", "butterfly", "car", "cat", "chair", "chicken", "cloud", "cow",
    "cup", "dinnerware", "dog", "duck", "fence", "flower", "grape", "grass", "horse", "house",
    "moon", "mountain", "people", "picnic rug", "pig", "rabbit", "road", "sheep", "sofa", "star",
    "street lamp", "sun", "table", "tree", "truck", "umbrella", "others",
]  # fmt: skip

_IRREGULAR_PLURALS = {"sheep": "sheep", "people": "people", "others": "others"}


def plural(noun: str) -> str:
    """English plural of a category name ("bench" -> "benches", "butterfly" -> "butterflies")."""
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"
