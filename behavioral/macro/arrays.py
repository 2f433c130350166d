"""The macro's arrays: their geometry and the published sub-top-k tilings."""

ARRAYS = {
    # columns, key elements per column, pulse scales (ternary pairs per element)
    "256x256": (256, 64, (1, 2, 4)),
    "128x128": (128, 64, (1,)),
}
SUBTOPK_PRESETS = {
    # docs/spec.md (sub-top-k): BERT-base, sequence 384 — 256 + 128 columns with quotas 3 + 2;
    # 128 × 128 arrays, three arrays, quotas 2 + 2 + 1.
    "3+2": ("256x256", (256, 128), (3, 2)),
    "2+2+1": ("128x128", (128, 128, 128), (2, 2, 1)),
}
#: read stacks per MAC row: (L,+,RBL_L), (L,−,RBL_R), (R,+,RBL_R), (R,−,RBL_L)
N_STACKS = 4
#: replica cells of the calibration phase per column (the ADC's rows)
N_REPLICA = 32
