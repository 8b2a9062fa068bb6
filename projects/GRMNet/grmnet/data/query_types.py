"""Position-stratified queries: does an expression need more than its category to be answered?

A query is tagged ``"category"`` ("category suffices") when its referents are all the instances
of their categories in the sketch: a model that finds every instance of the named category
answers it without reading any position word ("the sun on the left" in a sketch with one sun,
"the two cats in front of the trees" with two cats). Otherwise it is ``"position"`` ("needs
position"): the referents are a strict subset of their categories' instances, and only the
spatial part of the expression (rank, direction, relation) tells which. This is what the GRM is
for, so the evaluator reports AP on both subsets. Without the masks,
:func:`estimate_query_types` estimates the tags from the expression file alone.
"""

from typing import Dict, Iterable, Optional, Sequence

from ..language import tokenize
from .categories import plural

CATEGORY, POSITION = "category", "position"
QUERY_TYPES = (CATEGORY, POSITION)


def query_type(referred: Iterable[int], categories: Sequence[Optional[int]]) -> str:
    """The type of a query from its ground truth.

    Args:
        referred: instance indices the expression refers to (repeats allowed).
        categories: the category of every instance of the sketch, by instance index (None for an
            instance without a valid category: it belongs to no category).

    Returns:
        ``CATEGORY`` when ``referred`` is the set of all instances of the categories it
        contains, else ``POSITION``.
    """
    referred = set(referred)
    named = {categories[i] for i in referred}
    members = {i for i, c in enumerate(categories) if c is not None and c in named}
    return CATEGORY if members == referred else POSITION


def head_category(expression: str, nouns: Dict[str, str]) -> Optional[str]:
    """The category of the first word of ``expression`` found in ``nouns`` (word -> category,
    plurals included), or None."""
    for word in tokenize(expression):
        if word in nouns:
            return nouns[word]
    return None


def category_nouns(categories: Sequence[str]) -> Dict[str, str]:
    """word -> category for the singular and plural of every one-word category name, plus the
    synonyms of SketchyScene-Matching's expressions ("person" for "people", "grasses")."""
    nouns = {}
    for name in categories:
        if " " not in name:
            nouns[name] = nouns[plural(name)] = name
    nouns.update({"person": "people", "grasses": "grass"})
    return nouns


def estimate_query_types(sen_inst_idx_map: Dict[str, list], nouns: Dict[str, str]) -> Dict:
    """Query types of one sketch's expressions from the expression file alone (no masks).

    An instance's category is the head noun (the first category word) of the expressions that
    refer to it; a category's instances are all the instances its expressions refer to. This
    can only miss instances that no expression of the sketch refers to, so it can tag as
    "category" a query that needs position, never the reverse.

    Returns:
        expression -> ``CATEGORY``, ``POSITION``, or None when no category word is found.
    """
    members: Dict[str, set] = {}
    heads = {}
    for expression, indices in sen_inst_idx_map.items():
        heads[expression] = head_category(expression, nouns)
        if heads[expression] is not None:
            members.setdefault(heads[expression], set()).update(indices)
    return {
        e: None if heads[e] is None else (CATEGORY if set(i) == members[heads[e]] else POSITION)
        for e, i in sen_inst_idx_map.items()
    }
