"""The macro's arrays: their geometry and the published sub-top-k tilings.

A macro's own array is the one its artefact was characterised for (:func:`design_array`: the design's
columns, key elements and pair scales; "256x256" for the committed 65 nm artefact); :data:`ARRAYS` are
the paper's two named arrays, which a macro may also be asked for as a what-if on its column physics.
"""

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
