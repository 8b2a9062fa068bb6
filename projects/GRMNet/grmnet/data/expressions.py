"""Template referring expressions from boxes and class names (SketchyScene-Matching style).

Templates: category ("the tree", "all the trees", "both the trees", "the three trees"), rank and
absolute direction ("the leftmost tree", "the tree on the left", "the second tree on the right",
"the tree in the middle", "the topmost cloud", "the two trees on the left"), and relative
direction to a unique object ("the tree on the left of the house", "the two cars in front of the
house", "the cloud behind the house", "the tree near the car"). "In front of" means lower in the
sketch, "behind" higher, "near" a centre distance under 200 px at 768 px. "In front of" /
"behind" are only generated between objects of the same layer (``sky``): between a sky object
and a ground object they would always select the whole category.
"""

from collections import OrderedDict
from typing import Collection, Dict, List, Sequence

import numpy as np

from .categories import plural

NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
TEMPLATE_WORDS = (
    "the all both on in of left right middle leftmost rightmost topmost bottommost second top "
    "bottom front behind near two three four five"
).split()
NEAR_PIXELS_AT_768 = 200.0


def _noun_phrase(count: int, name: str) -> str:
    if count == 1:
        return name
    return f"{NUMBER_WORDS.get(count, str(count))} {plural(name)}"


def candidate_expressions(
    boxes: np.ndarray,
    names: Sequence[str],
    image_size: Sequence[int],
    sky: Collection[str] = (),
) -> Dict[str, List[int]]:
    """Every template expression that identifies a set of instances.

    Args:
        boxes: (N, 4) XYXY pixel boxes.
        names: N category names.
        image_size: (height, width) of the sketch.
        sky: categories drawn in the sky band; no "in front of" / "behind" between a sky and a
            ground category.

    Returns:
        OrderedDict expression -> sorted instance indices, deterministic order.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    height, width = image_size
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    margin = 0.03 * width
    out: Dict[str, List[int]] = OrderedDict()

    def add(text, indices):
        out.setdefault(text, sorted(int(i) for i in indices))

    groups = OrderedDict()
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)

    for name, members in groups.items():
        n, pl = len(members), plural(name)
        if n == 1:
            add(f"the {name}", members)
            continue
        add(f"all the {pl}", members)
        add(f"the {pl}", members)
        if n == 2:
            add(f"both the {pl}", members)
        if n in NUMBER_WORDS:
            add(f"the {NUMBER_WORDS[n]} {pl}", members)
        by_x = sorted(members, key=lambda i: cx[i])
        gaps_x = np.diff(cx[by_x])
        if gaps_x.min() > margin:
            if n == 2:
                add(f"the {name} on the left", by_x[:1])
                add(f"the left {name}", by_x[:1])
                add(f"the {name} on the right", by_x[1:])
                add(f"the right {name}", by_x[1:])
            else:
                add(f"the leftmost {name}", by_x[:1])
                add(f"the {name} on the leftmost", by_x[:1])
                add(f"the rightmost {name}", by_x[-1:])
                add(f"the two {pl} on the left", by_x[:2])
                add(f"the two {pl} on the right", by_x[-2:])
                add(f"the {_noun_phrase(n - 2, name)} in the middle", by_x[1:-1])
                if n == 3:
                    add(f"the middle {name}", by_x[1:2])
                if n >= 4:
                    add(f"the second {name} on the left", by_x[1:2])
                    add(f"the second {name} on the right", by_x[-2:-1])
        by_y = sorted(members, key=lambda i: cy[i])
        if np.diff(cy[by_y]).min() > margin:
            add(f"the topmost {name}", by_y[:1])
            add(f"the bottommost {name}", by_y[-1:])

    near = NEAR_PIXELS_AT_768 * max(height, width) / 768.0
    unique = [(name, m[0]) for name, m in groups.items() if len(m) == 1]
    for ref_name, r in unique:
        rx1, ry1, rx2, ry2 = boxes[r]
        for name, members in groups.items():
            if name == ref_name:
                continue
            same_layer = (name in sky) == (ref_name in sky)
            relations = (
                ("on the left of", [i for i in members if cx[i] < rx1]),
                ("on the right of", [i for i in members if cx[i] > rx2]),
                ("in front of", [i for i in members if cy[i] > ry2] if same_layer else []),
                ("behind", [i for i in members if cy[i] < ry1] if same_layer else []),
                ("near", [i for i in members if np.hypot(cx[i] - cx[r], cy[i] - cy[r]) < near]),
            )
            for relation, chosen in relations:
                if chosen:
                    add(f"the {_noun_phrase(len(chosen), name)} {relation} the {ref_name}", chosen)
    return out


def generate_expressions(
    boxes: np.ndarray,
    names: Sequence[str],
    image_size: Sequence[int],
    rng: np.random.Generator,
    max_expressions: int = 10,
    sky: Collection[str] = (),
) -> Dict[str, List[int]]:
    """A random subset (at most ``max_expressions``) of :func:`candidate_expressions`.

    Returns:
        dict expression -> instance indices (the ``sen_instIdx_map`` of the JSON files).
    """
    candidates = list(candidate_expressions(boxes, names, image_size, sky).items())
    order = rng.permutation(len(candidates))[:max_expressions]
    return OrderedDict(candidates[i] for i in sorted(order))


def template_vocabulary(category_names: Sequence[str]) -> List[str]:
    """Tokens the templates can produce for ``category_names`` (with <pad>, <unk> first)."""
    words = list(TEMPLATE_WORDS)
    for name in category_names:
        words += name.split() + plural(name).split()
    return ["<pad>", "<unk>"] + list(OrderedDict.fromkeys(words))
