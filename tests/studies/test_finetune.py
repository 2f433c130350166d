"""`topkima finetune`: bad input, corrupt checkpoints, and a tiny real training killed with SIGKILL
that resumes to the same weights as an uninterrupted run with the same seed.

The training tests need the optional [train] extra (JAX, optax) and skip without it, saying how
to install it; the tiny run needs the real MiniLM weights and the VADER sentences."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from topkima.cli import main
from topkima.studies.finetune import FinetuneConfig
from topkima.studies.finetune_eval import EvalConfig, loss_pp

TRAIN_SKIP = "the [train] extra is not installed: pip install -e '.[train]'"


@pytest.mark.parametrize("fields,message", [
    ({"trainings": ("dense", "qat-only")}, "unknown training mode 'qat-only'; choose from dense, tfcbp, hwaware"),
    ({"train_k": 0}, "k must be an integer ≥ 1"),
    ({"trainings": ()}, "no training chosen"),
    ({"batch_size": 8, "train_limit": 4}, "train_limit"),
])
def test_bad_training_config_is_named(fields, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**fields).validate()


def test_bad_eval_config_is_named():
    with pytest.raises(ValueError, match="k must be an integer ≥ 1"):
        EvalConfig(ks=(5, 0)).validate()
    with pytest.raises(ValueError, match="unknown attention mode 'sparse'"):
        EvalConfig(modes=("exact", "sparse")).validate()


def test_command_line_names_unknown_training_and_k(capsys, tmp_path):
    assert main(["finetune", "--training", "dense,fancy", "--out", str(tmp_path)]) == 1
    assert "unknown training mode 'fancy'" in capsys.readouterr().err
    assert main(["finetune", "--k", "0", "--out", str(tmp_path)]) == 1
    assert "k must be an integer ≥ 1" in capsys.readouterr().err


def test_loss_pp_is_dense_exact_minus_tfcbp():
    accuracy = {"dense": {"exact": 0.80}, "tfcbp": {"exact": 0.79, "quantized": 0.795, "topk5": 0.78, "topkima5": 0.77}}
    assert loss_pp(accuracy) == {"tfcbp_quantized": 0.5, "tfcbp_topk5": 2.0, "tfcbp_topkima": 3.0}


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    pytest.importorskip("jax", reason=TRAIN_SKIP)
    import jax.numpy as jnp
    from topkima.studies.finetune import CheckpointError, load_checkpoint, save_checkpoint
    state = ({"w": jnp.arange(6.0).reshape(2, 3), "layers": [(jnp.ones(4), jnp.zeros(4))]}, (jnp.float32(2.0),))
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, "abc", 7, state)
    step, again = load_checkpoint(path, "abc", state)
    assert step == 7 and np.array_equal(again[0]["w"], state[0]["w"])
    with pytest.raises(CheckpointError, match="another configuration"):
        load_checkpoint(path, "xyz", state)
    with pytest.raises(CheckpointError, match="corrupt .*wrong number of arrays"):
        load_checkpoint(path, "abc", (state[0],))
    path.write_bytes(path.read_bytes()[:200])      # cut short, as by a full disk
    with pytest.raises(CheckpointError, match=r"corrupt .*delete .*checkpoint\.npz"):
        load_checkpoint(path, "abc", state)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, "abc", state)


def _tiny_run(out: Path) -> list[str]:
    return [sys.executable, "-m", "topkima", "finetune", "--training", "dense", "--train-limit", "8",
            "--batch-size", "4", "--checkpoint-every", "1", "--seed", "3", "--no-eval", "--out", str(out)]


def _tensors(folder: Path) -> dict:
    from safetensors.numpy import load_file
    return load_file(str(folder / "dense" / "model" / "model.safetensors"))


@pytest.mark.weights
@pytest.mark.data
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    pytest.importorskip("jax", reason=TRAIN_SKIP)
    pytest.importorskip("optax", reason=TRAIN_SKIP)
    from topkima.behavioral.minilm import MiniLM, WeightsMissingError
    try:
        MiniLM.load()
    except WeightsMissingError as exc:
        pytest.skip(str(exc))
    env = {**os.environ, "TOPKIMA_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cwd = Path(__file__).resolve().parents[2]          # the VADER cache lives under the checkout
    # killed with SIGKILL once its first checkpoint is written, mid-run
    killed = subprocess.Popen(_tiny_run(tmp_path / "a"), cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + 120
    for line in killed.stderr:
        seen.append(line)
        if "step 1/2" in line or time.time() > deadline:
            break
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, "".join(seen)
    assert not (tmp_path / "a" / "dense" / "model").exists()
    resumed = subprocess.run(_tiny_run(tmp_path / "a"), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step" in resumed.stderr
    # the same seed, never interrupted
    whole = subprocess.run(_tiny_run(tmp_path / "b"), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    assert "resuming" not in whole.stderr
    resumed_weights, whole_weights = _tensors(tmp_path / "a"), _tensors(tmp_path / "b")
    assert resumed_weights.keys() == whole_weights.keys()
    for name, array in whole_weights.items():     # bit for bit
        assert resumed_weights[name].tobytes() == array.tobytes(), name
    trained = MiniLM.load(tmp_path / "b" / "dense" / "model")
    assert set(trained.extra) == {"classifier.weight", "classifier.bias"}
    assert np.abs(trained.extra["classifier.weight"]).max() > 0      # the head moved from zero
    # a corrupt checkpoint is named on the command line
    (tmp_path / "b" / "dense" / "done.json").unlink()
    (tmp_path / "b" / "dense" / "checkpoint.npz").write_bytes(b"\0" * 64)
    broken = subprocess.run(_tiny_run(tmp_path / "b"), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1 and "is corrupt" in broken.stderr and "delete" in broken.stderr
