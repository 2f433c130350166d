"""`topkima finetune`: all-MiniLM-L6-v2 plus a classification head, fine-tuned end to end on the
VADER movie-review training split, then evaluated through the chip's attention pipeline.

What is trained (issue 15; Topkima-Former, Dong et al., arXiv 2411.13050, §III and §V; SPEC §3, §6):

* ``dense``: the baseline, exact softmax attention in float32.
* ``tfcbp``: TFCBP + QAT (:mod:`topkima.studies.tfcbp`): every layer's attention keeps the k
  largest quantised scores of a row in the forward pass and back-propagates the dense softmax's
  gradient; Q, K, V are rounded straight-through to the project's codes, A is the fixed-point
  softmax core's 5-bit output.
* ``hwaware``: hardware-aware, option (c): ``tfcbp`` plus, on every integer score before top-k
  and the softmax core, an error drawn from those the calibrated behavioural chip makes on
  training sentences (:mod:`topkima.studies.chip_noise`; the noise is measured once on the
  pretrained model, and drawn per step from ``fold_in(PRNGKey(seed), step)``).

The model is the numpy MiniLM's own forward (:func:`~topkima.behavioral.minilm.encoder_forward`)
run over ``jax.numpy``; the head is a logistic regression on the L2-normalised sentence
embedding (:func:`head_logits`), initialised at zero. Loss: mean binary cross-entropy; optimiser: AdamW (Loshchilov & Hutter, ICLR 2019)
with a linear warm-up over the first 10 % of steps and a linear decay [ours: the usual BERT
fine-tuning recipe, Devlin et al. 2019]; gradients clipped to global norm 1.

Reproducible and resumable: the data order of epoch e comes from ``default_rng([seed, 4, e])``
(length-grouped batches, :func:`epoch_order`);
every ``checkpoint_every`` steps the parameters, the optimiser state and the step are written
atomically to ``<out>/<training>/checkpoint.npz``, and a rerun (e.g. after SIGKILL) resumes
from there and ends with the same weights as an uninterrupted run. The weights are saved with
:func:`~topkima.behavioral.minilm.save_model` (``MiniLM.load(<out>/<training>/model)``).
Held-out data: training touches only the training split; the test split is used only by the
evaluation (:mod:`topkima.studies.finetune_eval`).
"""
from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TRAININGS = ("dense", "tfcbp", "hwaware")
EVAL_MODES = ("exact", "quantized", "topk", "subtopk", "topkima")
K_SWEEP = (1, 2, 5, 10, 20)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not belong to this run."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides a fine-tuning run's result (its hash names the checkpoints)."""

    trainings: tuple[str, ...] = TRAININGS   #: which trainings, of :data:`TRAININGS`
    train_k: int = 5                         #: keys kept per row in the TFCBP forward (paper: 5)
    seed: int = 0                            #: split, head init, data order
    epochs: float = 1.0                      #: passes over the training sentences
    batch_size: int = 32                     #: sentences per step
    lr_encoder: float = 5e-5                 #: peak AdamW learning rate of the encoder
    lr_head: float = 2e-3                    #: peak AdamW learning rate of the head
    weight_decay: float = 0.01               #: AdamW decoupled weight decay (encoder and head weights)
    max_tokens: int = 128                    #: truncation for training (VADER sentences: ~27 tokens)
    train_limit: int | None = None           #: use a random subset of this many training sentences
    checkpoint_every: int = 25               #: steps between checkpoints
    noise_sentences: int = 128               #: hwaware: training sentences the chip's errors are measured on
    noise_chips: int = 4                     #: hwaware: chips they are measured on (seeds 1000, 1001, …)

    def validate(self) -> "FinetuneConfig":
        """Return self, or raise ValueError naming the bad field and what to do."""
        if not self.trainings:
            raise ValueError(f"no training chosen; choose from {', '.join(TRAININGS)}")
        for name in self.trainings:
            if name not in TRAININGS:
                raise ValueError(f"unknown training mode {name!r}; choose from {', '.join(TRAININGS)}")
        if isinstance(self.train_k, bool) or not isinstance(self.train_k, int) or self.train_k < 1:
            raise ValueError(f"k must be an integer ≥ 1 (keys kept per query row), got {self.train_k!r}")
        for name in ("batch_size", "checkpoint_every", "noise_sentences", "noise_chips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.train_limit is not None and self.train_limit < self.batch_size:
            raise ValueError(f"train_limit ({self.train_limit}) must be at least batch_size ({self.batch_size})")
        if not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        for name in ("lr_encoder", "lr_head"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 3 <= self.max_tokens <= 512:
            raise ValueError(f"max_tokens must be in 3…512, got {self.max_tokens}")
        return self

    def key(self, training: str, extra: str = "") -> str:
        """Hash of the fields that decide ``training``'s weights (``extra``: e.g. the hash of
        the hardware-aware noise table)."""
        fields = asdict(self)
        fields.pop("trainings")
        fields.pop("checkpoint_every")
        fields["training"] = training
        if extra:
            fields["extra"] = extra
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainData:
    """Tokenised training sentences and labels (the training split only)."""

    ids: list[np.ndarray]
    labels: np.ndarray
    texts: list[str] = field(repr=False)


def training_data(config: FinetuneConfig, reviews, train_idx: np.ndarray, model) -> TrainData:
    """The training sentences (a seeded subset with ``train_limit``), tokenised once."""
    idx = np.asarray(train_idx)
    if config.train_limit is not None and config.train_limit < len(idx):
        idx = np.sort(np.random.default_rng([config.seed, 3]).choice(idx, config.train_limit, replace=False))
    texts = [reviews.texts[i] for i in idx]
    ids, _, _ = model._encode(texts, config.max_tokens)
    return TrainData(ids, np.asarray(reviews.labels)[idx].astype(np.float32), texts)


def _bucket(n_tokens: int) -> int:
    """Padded length of a batch: the next power of two ≥ 16 (few shapes, few compilations)."""
    return max(16, 1 << (int(n_tokens) - 1).bit_length())


def batch_arrays(data: TrainData, order: np.ndarray):
    """(input_ids, mask, labels) of the sentences ``order``, padded to :func:`_bucket`."""
    rows = [data.ids[i] for i in order]
    length = _bucket(max(len(r) for r in rows))
    ids = np.zeros((len(rows), length), np.int32)
    mask = np.zeros((len(rows), length), bool)
    for r, token_ids in enumerate(rows):
        ids[r, :len(token_ids)] = token_ids
        mask[r, :len(token_ids)] = True
    return ids, mask, data.labels[order]


#: batches whose sentences are grouped by length: a random pool of this many batches is sorted
#: by length and cut into batches, and the batches are shuffled [ours: the usual length
#: bucketing; a random batch of 32 VADER sentences nearly always pads to 64 tokens, a grouped one
#: to 16, 32 or 64 by its own length: about 1.7x fewer tokens per step]
POOL_BATCHES = 16


def epoch_order(config: FinetuneConfig, lengths, epoch: int) -> np.ndarray:
    """Sentence order of one epoch (full batches only, in the order they are trained): a seeded
    permutation, grouped by token count within pools of :data:`POOL_BATCHES` batches, the
    batches shuffled. ``lengths``: token count per training sentence."""
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([config.seed, 4, epoch])
    bs = config.batch_size
    perm = rng.permutation(len(lengths))[:len(lengths) // bs * bs]
    pool = POOL_BATCHES * bs
    grouped = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                              for chunk in np.split(perm, range(pool, len(perm), pool))]) if len(perm) else perm
    batches = grouped.reshape(-1, bs)
    return batches[rng.permutation(len(batches))].reshape(-1)


#: the head reads √384 × the L2-normalised embedding, so each coordinate has unit spread, as the
#: standardised features of a probe [ours]
HEAD_INPUT_SCALE = float(np.sqrt(384))


def initial_head() -> dict:
    """Head (w, b) = 0: logit = HEAD_INPUT_SCALE · (embedding · w) + b starts at 0 (p = 1/2)."""
    return {"w": np.zeros(384, np.float32), "b": np.float32(0.0)}


def head_logits(embeddings, w, b):
    """The trained head's logits (positive = positive review) for L2-normalised embeddings."""
    return HEAD_INPUT_SCALE * (embeddings @ w) + b


def _loss_fn(training: str, train_k: int, noise=None):
    """loss(params, ids, mask, labels, key): mean binary cross-entropy of the head on the
    encoder; ``key`` (a JAX PRNG key) seeds the score noise of ``hwaware``, whose error
    quantiles (layers, heads, n) are ``noise``."""
    from topkima.behavioral.minilm import encoder_forward
    from topkima.studies.jax_backend import require_jax
    jax, jnp, optax = require_jax()
    if training == "hwaware" and noise is None:
        raise ValueError("hwaware training needs the chip's error quantiles (noise=)")
    if training in ("tfcbp", "hwaware"):
        from topkima.studies.chip_noise import draw_noise
        from topkima.studies.tfcbp import tfcbp_attention
    table = jnp.asarray(noise) if training == "hwaware" else None

    def attention_for(key):
        """The layers' attention (None: dense); ``key`` seeds the hwaware score noise."""
        if training == "dense":
            return None

        def attention(q, k, v, mask, layer):
            score_noise = None if table is None else draw_noise(
                table[layer], jax.random.fold_in(key, layer), (*q.shape[:3], k.shape[2]))
            return tfcbp_attention(q, k, v, mask, train_k, score_noise=score_noise)
        return attention

    def loss(params, ids, mask, labels, key):
        _, emb = encoder_forward(params["encoder"], ids, mask, attention_for(key), xp=jnp)
        logits = head_logits(emb, params["head"]["w"], params["head"]["b"])
        return optax.sigmoid_binary_cross_entropy(logits, labels).mean()

    return loss


def _optimizer(config: FinetuneConfig, total_steps: int, params):
    """AdamW with warm-up and linear decay, the head at its own rate; global-norm clipping."""
    from topkima.studies.jax_backend import require_jax
    jax, _, optax = require_jax()
    warm = max(1, total_steps // 10)

    def schedule(peak):
        return optax.join_schedules([optax.linear_schedule(0.0, peak, warm),
                                     optax.linear_schedule(peak, 0.0, max(1, total_steps - warm))], [warm])

    labels = {"encoder": jax.tree_util.tree_map(lambda _: "encoder", params["encoder"]),
              "head": {"w": "head", "b": "head"}}
    return optax.chain(optax.clip_by_global_norm(1.0), optax.multi_transform(
        {"encoder": optax.adamw(schedule(config.lr_encoder), weight_decay=config.weight_decay),
         "head": optax.adamw(schedule(config.lr_head), weight_decay=config.weight_decay)}, labels))


def save_checkpoint(path: Path, key: str, step: int, state) -> None:
    """(params, optimiser state) leaves, the step and the run key, atomically."""
    import jax
    from topkima.studies.outputs import save_npz_atomic
    leaves = jax.tree_util.tree_leaves(state)
    save_npz_atomic(path, key=np.array(key), step=np.array(step), n_leaves=np.array(len(leaves)),
                    **{f"leaf_{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)})


def load_checkpoint(path: Path, key: str, like):
    """(step, state) from ``path``, shaped like ``like``; CheckpointError if it is corrupt or
    belongs to another configuration."""
    import jax
    import jax.numpy as jnp
    fix = f"delete {path} to start this training afresh"
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            if not {"key", "step", "n_leaves"} <= files:
                raise CheckpointError(f"checkpoint {path} is corrupt (missing its header); {fix}")
            if str(f["key"]) != key:
                raise CheckpointError(f"checkpoint {path} belongs to another configuration ({f['key']} ≠ {key}); "
                                      f"{fix}, or use another --out")
            leaves, treedef = jax.tree_util.tree_flatten(like)
            if int(f["n_leaves"]) != len(leaves) or any(f"leaf_{i:05d}" not in files for i in range(len(leaves))):
                raise CheckpointError(f"checkpoint {path} is corrupt (wrong number of arrays); {fix}")
            loaded = []
            for i, leaf in enumerate(leaves):
                array = f[f"leaf_{i:05d}"]
                if array.shape != np.shape(leaf) or array.dtype != np.asarray(leaf).dtype:
                    raise CheckpointError(f"checkpoint {path} is corrupt (array {i} has shape {array.shape}, "
                                          f"{array.dtype}; expected {np.shape(leaf)}, {np.asarray(leaf).dtype}); {fix}")
                loaded.append(jnp.asarray(array))
            step = int(f["step"])
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({type(exc).__name__}: {exc}); {fix}") from None
    return step, jax.tree_util.tree_unflatten(treedef, loaded)


def train_one(config: FinetuneConfig, training: str, model, data: TrainData, head: dict, out_dir: Path,
              log=print, noise=None) -> Path:
    """Fine-tune one model (resuming from its checkpoint); returns its saved model folder.
    ``noise``: the chip's error quantiles for ``hwaware`` (:func:`~topkima.studies.chip_noise.noise_table`)."""
    from topkima.behavioral.minilm import save_model
    from topkima.studies.jax_backend import require_jax, to_jax, to_numpy
    jax, jnp, optax = require_jax()
    folder = out_dir / training
    folder.mkdir(parents=True, exist_ok=True)
    key = config.key(training, "" if noise is None else hashlib.sha256(
        np.ascontiguousarray(noise, np.float32).tobytes()).hexdigest()[:16])
    model_dir, done_file = folder / "model", folder / "done.json"
    if done_file.is_file() and json.loads(done_file.read_text()).get("key") == key and model_dir.is_dir():
        log(f"{training}: already trained ({model_dir})")
        return model_dir
    steps_per_epoch = len(data.ids) // config.batch_size
    total = max(1, round(config.epochs * steps_per_epoch))
    params = to_jax({"encoder": model.params, "head": head})
    optimizer = _optimizer(config, total, params)
    state = (params, optimizer.init(params))
    step = 0
    checkpoint = folder / "checkpoint.npz"
    if checkpoint.exists():
        step, state = load_checkpoint(checkpoint, key, state)
        log(f"{training}: resuming at step {step} of {total}")
    loss_fn = _loss_fn(training, config.train_k, noise)
    root_key = jax.random.PRNGKey(config.seed)
    lengths = np.array([len(ids) for ids in data.ids])

    @jax.jit
    def update(state, ids, mask, labels, step):
        params, opt_state = state
        key = jax.random.fold_in(root_key, step)   # the step's noise: the same after a resume
        loss, grads = jax.value_and_grad(loss_fn)(params, ids, mask, labels, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    t0, done_here, losses = time.time(), 0, []
    while step < total:
        epoch, within = divmod(step, steps_per_epoch)
        order = epoch_order(config, lengths, epoch)[within * config.batch_size:(within + 1) * config.batch_size]
        ids, mask, labels = batch_arrays(data, order)
        state, loss = update(state, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(labels), jnp.int32(step))
        step += 1
        done_here += 1
        losses.append(float(loss))
        if step % config.checkpoint_every == 0 or step == total:
            save_checkpoint(checkpoint, key, step, state)
            log(f"{training}: step {step}/{total}, loss {np.mean(losses[-config.checkpoint_every:]):.4f}, "
                f"{(time.time() - t0) / done_here:.2f} s/step, checkpoint written")
    params = to_numpy(state[0])
    save_model(model_dir, params["encoder"], {"classifier.weight": params["head"]["w"][None, :],
                                               "classifier.bias": np.reshape(params["head"]["b"], (1,))})
    from topkima.circuits.files import write_text_atomic
    write_text_atomic(done_file, json.dumps({"key": key, "steps": total, "config": asdict(config),
                                             "last_losses": losses[-config.checkpoint_every:]}, indent=1))
    log(f"{training}: saved {model_dir}")
    return model_dir


#: ``--quick`` (≤ 5 min on 2 cores): a small training subset, one epoch, a small test subset
QUICK = {"train": {"train_limit": 192, "batch_size": 16, "checkpoint_every": 6, "noise_sentences": 16, "noise_chips": 2},
         "eval": {"test_limit": 60}}


def run_finetune(config: FinetuneConfig, eval_config, out_dir: str | Path, *, evaluate: bool = True,
                 data_dir: str | Path = ".cache/downloads", log=print) -> dict:
    """Train every ``config.trainings`` (resuming), then evaluate them (``eval_config``, an
    :class:`~topkima.studies.finetune_eval.EvalConfig`) and write ``<out>/summary.json``."""
    from topkima.studies import movie_reviews as sentiment
    from topkima.behavioral.minilm import MiniLM
    from topkima.studies.finetune_eval import evaluate as run_eval, write_summary
    from topkima.studies.jax_backend import require_jax
    config.validate()
    eval_config.validate()
    require_jax()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0, cpu0 = time.time(), time.process_time()
    reviews = sentiment.load_movie_reviews(sentiment.fetch_movie_reviews(data_dir))
    train_idx, test_idx = sentiment.split_train_test(len(reviews), test_fraction=0.3, seed=config.seed)
    model = MiniLM.load()
    data = training_data(config, reviews, train_idx, model)
    log(f"{len(data.ids)} training sentences, seed {config.seed}, k = {config.train_k} for TFCBP")
    noise, noise_info = None, None
    if "hwaware" in config.trainings:
        from topkima.studies.chip_noise import noise_table
        t = time.time()
        noise, noise_info = noise_table(model, reviews, train_idx, config.train_k, config.seed,
                                        n_texts=config.noise_sentences, n_chips=config.noise_chips)
        log(f"hwaware: the chip's score errors measured on {noise_info['n_sentences']} training sentences, "
            f"chips {noise_info['chip_seeds']} ({time.time() - t:.0f} s)")
    model_dirs, train_info = {}, {}
    for training in config.trainings:
        t = time.time()
        model_dirs[training] = train_one(config, training, model, data, initial_head(), out, log=log,
                                         noise=noise if training == "hwaware" else None)
        train_info[training] = {"wall_time_s": round(time.time() - t, 1),
                                **json.loads((out / training / "done.json").read_text())}
    summary = {"config": asdict(config), "n_train": len(data.ids), "training": train_info}
    if noise_info is not None:
        summary["hwaware_noise"] = noise_info
    if evaluate:
        summary.update(run_eval(model_dirs, reviews, train_idx, test_idx, eval_config, out, seed=config.seed, log=log))
    from topkima.studies.code_version import code_version
    summary["code_version"] = code_version()
    summary["git_commit"] = _git_commit()
    summary["wall_time_s"] = round(time.time() - t0, 1)
    # this process (training, JAX's threads included) plus the evaluation workers: the run's
    # cost without the time it spent paused or waiting for the shared cores
    summary["cpu_time_s"] = round(time.process_time() - cpu0 + summary.get("eval_cpu_time_s", 0.0), 1)
    write_summary(out / "summary.json", summary)
    log(f"wrote {out / 'summary.json'} ({summary['wall_time_s']:.0f} s)")
    return summary


def _git_commit() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes), or None outside a git checkout."""
    import subprocess
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
