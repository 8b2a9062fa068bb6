"""Position-stratified queries: does an expression need more than its category to be answered?

A query is tagged ``"category"`` ("category suffices") when its referents are all the instances
of their categories in the sketch: a model that finds every instance of the named category
answers it without reading any position word ("the sun on the left" in a sketch with one sun,
"the two cats in front of the trees" with two cats). Otherwise it is ``"position"`` ("needs
position"): the referents are a strict subset of their categories' instances, and only the
spatial part of the expression (rank, direction, relation) tells which. This is what the GRM is
for, so the evaluator reports AP on both subsets.
"""

from typing import Iterable, Optional, Sequence

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
