"""Graded preferences: the 5- and 7-point pairwise scales, and agreement at the ordinal level.

A graded label says how much better one response is: on the 7-point scale -3 is "A much better",
0 "about the same" and 3 "B much better" (HelpSteer-Preference's strength from -3 to 3). Agreement on
such labels must count a 2 against a 3 as a smaller disagreement than a -3 against a 3: weighted
Cohen's kappa (scikit-learn) for two annotators, Krippendorff's alpha at the ordinal level
(``krippendorff``) for two or more, with missing values.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

SCALES: dict[int, tuple[tuple[int, str], ...]] = {
    5: ((-2, "A much better"), (-1, "A better"), (0, "About the same"), (1, "B better"), (2, "B much better")),
    7: ((-3, "A much better"), (-2, "A better"), (-1, "A slightly better"), (0, "About the same"),
        (1, "B slightly better"), (2, "B better"), (3, "B much better")),
}
"""Points of each scale, (value, title), from A's end to B's."""


class OrdinalError(ValueError):
    """A graded value or scale that cannot be used; the message says which."""


def check_grade(value, points: int) -> int:
    """``value`` as a point of the ``points``-point scale, or OrdinalError.

    >>> check_grade("2", 5)
    2
    >>> check_grade(4, 7)
    Traceback (most recent call last):
    ...
    components.labels.ordinal.OrdinalError: a grade on the 7-point scale is a whole number from -3 to 3, not 4
    """
    if points not in SCALES:
        raise OrdinalError(f"scales have {' or '.join(map(str, SCALES))} points, not {points}")
    half = points // 2
    try:
        v = None if isinstance(value, (bool, float)) else int(str(value).strip())
    except ValueError:
        v = None
    if v is None or not -half <= v <= half:
        raise OrdinalError(f"a grade on the {points}-point scale is a whole number from {-half} to {half}, "
                           f"not {value!r}")
    return v


def as_preference(grade: int) -> str:
    """The binary label a grade implies (A is the dataset's chosen side): chosen, rejected or tie.

    >>> [as_preference(g) for g in (-3, 0, 2)]
    ['chosen', 'tie', 'rejected']
    """
    return "chosen" if grade < 0 else "rejected" if grade > 0 else "tie"


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def weighted_kappa(a: Sequence[int], b: Sequence[int], points: int = 7, weights: str = "quadratic") -> float | None:
    """Cohen's kappa of two annotators' grades of the same items, weighted by distance on the scale
    (scikit-learn's ``cohen_kappa_score``); None when undefined (no items, or one value only).

    >>> round(weighted_kappa([-3, -2, 0, 3], [-3, -1, 0, 2]), 3)
    0.941
    """
    from sklearn.metrics import cohen_kappa_score

    if weights not in ("linear", "quadratic"):
        raise OrdinalError("weights are 'linear' or 'quadratic'")
    if len(a) != len(b):
        raise OrdinalError("both annotators must grade the same items")
    if not a or len(set(a) | set(b)) == 1:
        return None
    labels = [v for v, _ in SCALES[points]]
    return _num(cohen_kappa_score(list(a), list(b), labels=labels, weights=weights))


def ordinal_alpha(table: Mapping[int, Mapping[str, int]], annotators: Sequence[str]) -> float | None:
    """Krippendorff's alpha at the ordinal level of ``{item: {annotator: grade}}``, missing values
    allowed (``krippendorff.alpha``); items graded by one annotator only are left out. None when
    undefined.

    >>> table = {0: {"ada": -3, "bo": -2}, 1: {"ada": 1, "bo": 1}, 2: {"ada": 3, "bo": 2, "cy": 3}}
    >>> round(ordinal_alpha(table, ["ada", "bo", "cy"]), 3)
    0.897
    """
    import krippendorff
    import numpy as np

    items = [i for i, v in table.items() if sum(a in v for a in annotators) >= 2]
    if not items or len(annotators) < 2:
        return None
    data = np.full((len(annotators), len(items)), np.nan)
    for j, item in enumerate(items):
        for i, a in enumerate(annotators):
            if a in table[item]:
                data[i, j] = float(table[item][a])
    if len(set(data[~np.isnan(data)].tolist())) < 2:
        return None
    return _num(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))
