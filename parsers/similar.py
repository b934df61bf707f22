"""Near misses: which of the addresses or domains seen is close to what was asked.

Strategy: plain Levenshtein distance (insert, delete, substitute, each costing one), with a
swap of two neighbouring letters counted as one edit too, since that is the commonest typo
(`exmaple.net`). Only candidates within a small distance are kept, closest first; a candidate
equal to the target is not a near miss.
"""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Edits (insert, delete, substitute, swap neighbours) from `a` to `b`; at most `limit + 1`
    (the exact value above the limit does not matter to anyone)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def allowed_edits(text: str) -> int:
    """How far a near miss may be: one edit for short words, two from eight characters on."""
    return 1 if len(text) < 8 else 2


def closest(target: str, candidates: Iterable[str], *, at_most: int = 5) -> list[str]:
    """The candidates within `allowed_edits(target)` of it, closest first, then alphabetical."""
    target = target.lower()
    limit = allowed_edits(target)
    scored = {}
    for candidate in candidates:
        low = candidate.lower()
        if low == target or low in scored:
            continue
        distance = edit_distance(target, low, limit)
        if distance <= limit:
            scored[low] = distance
    return sorted(scored, key=lambda c: (scored[c], c))[:at_most]
