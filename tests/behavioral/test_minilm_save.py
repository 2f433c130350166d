"""save_model writes a folder MiniLM.load reads back: the same encoder, the extra tensors kept,
its own checksum checked."""
import numpy as np
import pytest

from topkima.behavioral.minilm import MiniLM, WeightsMissingError, save_model

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def model():
    try:
        return MiniLM.load()
    except WeightsMissingError as exc:
        pytest.skip(str(exc))


def test_saved_model_round_trips(model, tmp_path):
    head = {"classifier.weight": np.arange(384, dtype=np.float32)[None, :], "classifier.bias": np.ones(1, np.float32)}
    save_model(tmp_path / "m", model.params, head)
    again = MiniLM.load(tmp_path / "m")
    for layer_a, layer_b in zip(model.params["layers"], again.params["layers"], strict=True):
        for key in layer_a:
            np.testing.assert_allclose(np.asarray(layer_b[key]), np.asarray(layer_a[key]), rtol=2e-7, atol=0)
    np.testing.assert_array_equal(again.params["word"], model.params["word"])
    assert set(again.extra) == set(head)
    texts = ["not a bad film at all", "tedious"]
    np.testing.assert_allclose(again.embed(texts), model.embed(texts), atol=1e-6)


def test_saved_model_with_changed_bytes_is_refused(model, tmp_path):
    folder = save_model(tmp_path / "m", model.params)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        MiniLM.load(folder)
