"""The fine-tuned models' evaluation (topkima.studies.finetune_eval): the same embeddings and
accuracies whether the runs go to worker processes or stay in this one, and finished runs are
not run again. Real MiniLM weights (saved as a model folder with a head) and a real chip."""
from types import SimpleNamespace

import numpy as np
import pytest

from topkima.studies.finetune_eval import EvalConfig, _runs, evaluate

SENTENCES = ["A gripping, beautifully acted film that never lets go of you.",
             "Dull, overlong and oddly pleased with itself.",
             "The script is a mess, but the leads are charming enough to carry it.",
             "One of the year's best: funny, sad and wise all at once.",
             "I wanted to like it more than I did.",
             "Nothing here you have not seen done better a dozen times before, and with more wit.",
             "Warm, sly and never sentimental.",
             "A tedious exercise in style over substance."]


def test_runs_put_the_headline_k_and_the_chips_first_and_k_free_modes_once():
    runs = _runs(EvalConfig(n_chips=2), (1, 5))
    assert runs[:2] == [("topkima", 5, 0), ("topkima", 5, 1)]
    assert all(k in (None, 5) for _, k, _ in runs[:6]) and all(k == 1 for _, k, _ in runs[6:])
    assert runs[6:8] == [("topkima", 1, 0), ("topkima", 1, 1)]
    assert runs.count(("exact", None, None)) == 1 and ("subtopk", 5, None) in runs
    assert len(runs) == 4 + 2 + 2 * 2
    assert EvalConfig().ks_for("hwaware") == (5,) and EvalConfig().ks_for("tfcbp") == (5,)
    swept = EvalConfig(ks=(1, 2, 5, 10, 20))
    assert swept.ks_for("hwaware") == (5,) and swept.ks_for("tfcbp") == (1, 2, 5, 10, 20)
    assert EvalConfig(ks=(20, 1), headline_k=3).ks_for("dense") == (1, 3, 20)


def test_bad_worker_count_is_named():
    with pytest.raises(ValueError, match="workers must be an integer ≥ 0"):
        EvalConfig(workers=-1).validate()


@pytest.mark.weights
def test_workers_give_the_embeddings_of_one_process_and_finished_runs_are_kept(tmp_path):
    from topkima.behavioral.minilm import MiniLM, WeightsMissingError, save_model
    try:
        model = MiniLM.load()
    except WeightsMissingError as exc:
        pytest.skip(str(exc))
    head = np.random.default_rng(0).normal(size=(1, 384)).astype(np.float32)
    model_dir = save_model(tmp_path / "model", model.params,
                           {"classifier.weight": head, "classifier.bias": np.zeros(1, np.float32)})
    reviews = SimpleNamespace(texts=SENTENCES, labels=[1, 0, 1, 1, 0, 0, 1, 0])
    config = dict(modes=("exact", "topk", "topkima"), headline_k=2, n_chips=2)
    logs = {}
    summaries = {}
    for workers in (0, 2):
        lines = logs.setdefault(workers, [])
        summaries[workers] = evaluate({"dense": model_dir}, reviews, np.arange(4), np.arange(4, 8),
                                      EvalConfig(workers=workers, **config), tmp_path / f"w{workers}",
                                      log=lines.append)
    assert summaries[0]["accuracy"] == summaries[2]["accuracy"]
    assert set(summaries[0]["accuracy"]["dense"]) == {"exact", "topk2", "topkima2"}
    for path in (tmp_path / "w0").rglob("*.npz"):
        other = tmp_path / "w2" / path.relative_to(tmp_path / "w0")
        with np.load(path) as a, np.load(other) as b:
            assert a["emb"].tobytes() == b["emb"].tobytes(), path.name
            np.testing.assert_array_equal(a["alpha_per_layer"], b["alpha_per_layer"])
    again = []
    evaluate({"dense": model_dir}, reviews, np.arange(4), np.arange(4, 8), EvalConfig(workers=2, **config),
             tmp_path / "w2", log=again.append)
    assert any("0 runs to do of 4" in line for line in again), again
