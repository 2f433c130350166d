"""One MiniLM forward over two array namespaces: jax.numpy (training) against numpy (inference).

Needs the real all-MiniLM-L6-v2 weights and the optional [train] extra (skips, saying how to
install, without either)."""
import sys

import numpy as np
import pytest

from topkima.studies import jax_backend


def test_missing_train_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)   # import jax now raises ImportError
    with pytest.raises(jax_backend.TrainExtraMissingError, match=r"pip install -e '\.\[train\]'"):
        jax_backend.require_jax()


@pytest.mark.weights
def test_jax_forward_matches_numpy_forward():
    pytest.importorskip("jax", reason="the [train] extra is not installed: pip install -e '.[train]'")
    import jax.numpy as jnp
    from topkima.behavioral.minilm import MiniLM, WeightsMissingError, encoder_forward
    try:
        model = MiniLM.load()
    except WeightsMissingError as exc:
        pytest.skip(str(exc))
    batch = model.tokenize(["a gripping, beautifully shot film.", "dull.",
                            "the plot meanders but the actors keep it afloat for two long hours"])
    reference = model.forward(batch, record=True)
    hidden = []
    tokens, sentence = encoder_forward(jax_backend.to_jax(model.params), jnp.asarray(batch.input_ids),
                                       jnp.asarray(batch.mask), xp=jnp, hidden_states=hidden)
    np.testing.assert_allclose(np.asarray(sentence), reference.sentence_embeddings, atol=1e-5)
    real = batch.mask
    for got, want in zip(hidden, reference.hidden_states, strict=True):
        np.testing.assert_allclose(np.asarray(got)[real], want[real], atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(tokens)[real], reference.token_embeddings[real], atol=1e-5)
