"""The macro's arrays: their geometry and the published sub-top-k tilings.

A macro's own array is the one its artefact was characterised for (:func:`design_array`: the design's
columns, key elements and pair scales; "256x256" for the committed 65 nm artefact); :data:`ARRAYS` are
the paper's two named arrays, which a macro may also be asked for as a what-if on its column physics.
"""

from typing import NamedTuple

ARRAYS = {
    # columns, key elements per column, pulse scales (ternary pairs per element)
    "256x256": (256, 64, (1, 2, 4)),
    "128x128": (128, 64, (1,)),
}


def design_array(n_columns: int, n_elements: int, pair_scales: tuple[int, ...]) -> tuple[str, tuple]:
    """(name, (columns, key elements per column, pulse scales)) of a design's array. A geometry of
    :data:`ARRAYS` keeps the paper's name (the 65 nm preset's, and the 128-step designs', whose taller
    bitlines carry more replica rows but the same key columns: "256x256"), so the published sub-top-k
    tilings apply; any other is named by its geometry ("design:128c32e1-2-4"), which no named array shares."""
    geometry = (int(n_columns), int(n_elements), tuple(int(x) for x in pair_scales))
    for name, named in ARRAYS.items():
        if named == geometry:
            return name, geometry
    return f"design:{geometry[0]}c{geometry[1]}e{'-'.join(map(str, geometry[2]))}", geometry


SUBTOPK_PRESETS = {
    # docs/spec.md (sub-top-k): BERT-base, sequence 384 — 256 + 128 columns with quotas 3 + 2;
    # 128 × 128 arrays, three arrays, quotas 2 + 2 + 1.
    "3+2": ("256x256", (256, 128), (3, 2)),
    "2+2+1": ("128x128", (128, 128, 128), (2, 2, 1)),
}
class Tiling(NamedTuple):
    """Explicit sub-top-k arrays (a ``quotas`` argument of ``ChipInstance.topk``): the keys each
    array holds, in column order (the last may hold fewer), and the grants its counter waits for."""

    sizes: tuple[int, ...]
    quotas: tuple[int, ...]


#: read stacks per MAC row: (L,+,RBL_L), (L,−,RBL_R), (R,+,RBL_R), (R,−,RBL_L)
N_STACKS = 4


def array_quotas(n_keys: int, k: int, array: str, n_cols: int | None = None):
    """How a row of ``n_keys`` keys spreads over arrays of type ``array`` (``n_cols`` columns each; None:
    the named array's of :data:`ARRAYS`), and how many keys each array's arbiter keeps (the ``quotas``
    argument of ``ChipInstance.topk``).

    The rule [ours, generalising the paper's two published tilings]: m = ⌈n_keys / columns⌉
    arrays.

    * m = 1: one array keeps k (None);
    * 2 ≤ m ≤ k: fixed quotas that sum to k, ⌊k/m⌋ each and one more for the first k mod m
      arrays, over keys split evenly — the published "3+2" (256 + 128 columns, up to 384 keys)
      and "2+2+1" (three 128-column arrays) layouts where they apply;
    * m > k: a positive quota for every array cannot sum to k, so the arrays share one k-counter
      (their ramps run in lockstep and the k earliest firings over all of them win: None, the
      global top-k of ``ChipInstance.topk``).
    """
    n_cols = ARRAYS[array][0] if n_cols is None else int(n_cols)
    m = -(-n_keys // n_cols)
    if m <= 1 or m > k:
        return None
    if k == 5 and array == "256x256" and m == 2 and n_keys <= 384 and n_keys - 256 >= 2:
        return "3+2"
    if k == 5 and array == "128x128" and m == 3:
        return "2+2+1"
    return tuple(k // m + (i < k % m) for i in range(m))


def split_in_proportion(total: int, sizes) -> tuple[int, ...]:
    """``total`` grants split over arrays in proportion to the keys each holds (``sizes``), largest
    remainder first (ties: the earlier array), each ≥ 1 while ``total`` allows: 3 + 2 for k = 5 over
    256 + 128 keys (SPEC §3)."""
    m, d = len(sizes), sum(sizes)
    share = [total * s / d for s in sizes]
    q = [max(1, int(x)) for x in share]
    order = sorted(range(m), key=lambda i: (-(share[i] - int(share[i])), i))
    i = 0
    while sum(q) < total:
        q[order[i % m]] += 1
        i += 1
    while sum(q) > total:
        j = max(range(m), key=lambda i: q[i])
        q[j] -= 1
    return tuple(q)


def _largest_remainder(total: int, sizes) -> list[int]:
    """``total`` split in proportion to ``sizes``: the whole parts, then one more each for the largest
    remainders (ties: the earlier array); no floor, so an array may get none."""
    d = sum(sizes)
    share = [total * s / d for s in sizes]
    q = [int(x) for x in share]
    for i in sorted(range(len(sizes)), key=lambda i: (-(share[i] - q[i]), i))[:total - sum(q)]:
        q[i] += 1
    return q


def candidate_tiling(n_keys: int, k: int, k_c: int, array: str, n_cols: int | None = None):
    """The arrays of a row of ``n_keys`` keys when the k-counters stop after k_c ≥ k candidate grants
    in all: the keys stay where :func:`array_quotas` puts them for k (they are written before the
    counters run, so the layout cannot depend on when the counters stop), each array keeps its quota
    of k and the k_c − k extra grants are split over the arrays in proportion to their keys (largest
    remainder, ties to the earlier array, no array guaranteed one; each array at most its keys). So an array's k grants are among its
    candidates. One array, or arrays sharing one counter (more arrays than k): as for k (None)."""
    layout = array_quotas(n_keys, k, array, n_cols)
    if layout is None or k_c <= k:
        return layout
    if isinstance(layout, str):
        _, preset_sizes, k_quotas = SUBTOPK_PRESETS[layout]
    else:
        m, k_quotas = len(layout), layout
        preset_sizes = tuple(n_keys // m + (i < n_keys % m) for i in range(m))
    sizes, c0 = [], 0
    for size in preset_sizes:           # the keys each array really holds
        sizes.append(max(0, min(size, n_keys - c0)))
        c0 += size
    extra = min(k_c, n_keys) - k
    quotas = [q + x for q, x in zip(k_quotas, _largest_remainder(extra, sizes))]
    for i in range(len(quotas)):       # an array cannot grant more keys than it holds: the rest to the others
        surplus = quotas[i] - sizes[i]
        if surplus > 0:
            quotas[i] = sizes[i]
            for j in range(len(quotas)):
                room = min(surplus, sizes[j] - quotas[j])
                if room > 0:
                    quotas[j] += room
                    surplus -= room
    return Tiling(tuple(preset_sizes), tuple(quotas))
