"""The voice registry's rules: default preloaded, others on demand, LRU cap, idle TTL, and
never dropping a voice that is in use. Loading is replaced by a recorder: these tests are
about which voices stay resident, not about Piper."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
from arc_common.errors import BadRequest, Busy, Internal, Unsupported
from arc_tts.settings import TtsOptions
from arc_tts.voices import BUNDLED_VOICE, Voice, VoiceCatalog, VoiceFiles, VoiceRegistry
from pydantic import ValidationError

from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.loaded: list[str] = []
        self.fail = fail or set()

    def __call__(self, files: VoiceFiles) -> Voice:
        if files.name in self.fail:
            raise ValueError("corrupt model")
        self.loaded.append(files.name)
        return cast(Voice, files.name)


def voice_dir(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / f"{name}.onnx").write_bytes(b"model")
        (tmp_path / f"{name}.onnx.json").write_text("{}")
    (tmp_path / "orphan.onnx").write_bytes(b"no config beside it")
    return tmp_path


async def started_registry(
    tmp_path: Path, *, loader: Loader | None = None, cap: int = 2, ttl: float = 60.0
) -> tuple[VoiceRegistry, Loader, Clock]:
    """A registry over voices a, b and c on a clock the test moves, started (its default
    voice loaded), with the loader that records what it loads."""
    loader = loader or Loader()
    clock = Clock()
    voices = VoiceRegistry(
        VoiceCatalog([voice_dir(tmp_path, "a", "b", "c")]),
        loader,
        default_voice=BUNDLED_VOICE,
        max_resident=cap,
        idle_ttl_s=ttl,
        clock=clock,
    )
    await voices.start()
    return voices, loader, clock


def test_catalog_lists_bundled_voice_and_complete_voice_files(tmp_path: Path) -> None:
    catalog = VoiceCatalog([voice_dir(tmp_path, "x")])
    assert catalog.names == sorted([BUNDLED_VOICE, "x"])
    assert catalog.get("orphan") is None
    (tmp_path / "late.onnx").write_bytes(b"m")
    (tmp_path / "late.onnx.json").write_text("{}")
    catalog.rescan()
    assert catalog.get("late") is not None


async def test_default_is_preloaded_and_others_load_on_demand(tmp_path: Path) -> None:
    voices, loader, _clock = await started_registry(tmp_path)
    assert voices.resident == [BUNDLED_VOICE] and loader.loaded == [BUNDLED_VOICE]
    async with voices.lease("a") as voice:
        assert cast(object, voice) == "a"
    async with voices.lease(None) as voice:
        assert cast(object, voice) == BUNDLED_VOICE
    assert loader.loaded == [BUNDLED_VOICE, "a"]
    await voices.close()


async def test_least_recently_used_idle_voice_goes_over_the_cap(tmp_path: Path) -> None:
    voices, _loader, _clock = await started_registry(tmp_path, cap=3)
    for name in ("a", "b", "a", "c"):
        async with voices.lease(name):
            pass
    # b was used least recently; the default voice is never dropped.
    assert set(voices.resident) == {BUNDLED_VOICE, "a", "c"}
    await voices.close()


async def test_voice_in_use_is_never_evicted(tmp_path: Path) -> None:
    voices, _loader, clock = await started_registry(tmp_path, cap=2, ttl=10.0)
    async with voices.lease("a"):
        async with voices.lease("b"):
            # Over the cap while both are in use: allowed until they are released.
            assert set(voices.resident) == {BUNDLED_VOICE, "a", "b"}
            clock.now += 100
            assert voices.evict_idle() == []
        assert "a" in voices.resident
    assert len(voices.resident) <= 2
    await voices.close()


async def test_idle_voices_are_unloaded_after_the_ttl(tmp_path: Path) -> None:
    voices, loader, clock = await started_registry(tmp_path, cap=4, ttl=30.0)
    async with voices.lease("a"):
        pass
    clock.now += 29
    assert voices.evict_idle() == []
    clock.now += 2
    assert voices.evict_idle() == ["a"]
    assert voices.resident == [BUNDLED_VOICE]
    async with voices.lease("a"):
        pass
    assert loader.loaded.count("a") == 2
    await voices.close()


async def test_background_sweep_unloads_idle_voices(tmp_path: Path) -> None:
    loader = Loader()
    voices = VoiceRegistry(
        VoiceCatalog([voice_dir(tmp_path, "a")]),
        loader,
        default_voice=BUNDLED_VOICE,
        max_resident=3,
        idle_ttl_s=0.1,
    )
    await voices.start()
    async with voices.lease("a"):
        pass
    await wait_until(lambda: "a" not in voices.resident, what="the idle voice evicted")
    assert voices.resident == [BUNDLED_VOICE]
    await voices.close()


async def test_unknown_voice_is_unsupported_and_a_broken_one_internal(tmp_path: Path) -> None:
    voices, _loader, _clock = await started_registry(tmp_path, loader=Loader(fail={"b"}))
    with pytest.raises(Unsupported, match="not installed"):
        async with voices.lease("nobody"):
            pass
    with pytest.raises(Internal, match="failed to load"):
        async with voices.lease("b"):
            pass
    assert voices.resident == [BUNDLED_VOICE]
    await voices.close()


async def test_concurrent_requests_load_a_voice_once(tmp_path: Path) -> None:
    voices, loader, _clock = await started_registry(tmp_path, cap=3)

    async def use() -> None:
        async with voices.lease("a"):
            await asyncio.sleep(0.01)

    await asyncio.gather(*(use() for _ in range(5)))
    assert loader.loaded.count("a") == 1
    await voices.close()


async def test_missing_default_voice_fails_start(tmp_path: Path) -> None:
    voices = VoiceRegistry(
        VoiceCatalog([]), Loader(), default_voice="zz", max_resident=1, idle_ttl_s=1.0
    )
    with pytest.raises(Unsupported, match="default voice"):
        await voices.start()


async def test_preloaded_voices_load_at_start_and_stay(tmp_path: Path) -> None:
    loader, clock = Loader(), Clock()
    voices = VoiceRegistry(
        VoiceCatalog([voice_dir(tmp_path, "a", "b", "c")]),
        loader,
        default_voice=BUNDLED_VOICE,
        max_resident=3,
        idle_ttl_s=10.0,
        preload=["a"],
        clock=clock,
    )
    await voices.start()
    assert loader.loaded == [BUNDLED_VOICE, "a"]
    for name in ("b", "c", "b"):
        async with voices.lease(name):
            pass
    # Over the cap, the idle unpinned voice goes (b for c, then c for b), never a.
    assert loader.loaded == [BUNDLED_VOICE, "a", "b", "c", "b"]
    assert set(voices.resident) == {BUNDLED_VOICE, "a", "b"}
    clock.now += 100
    # Idle long past the TTL: again only the voice nobody pinned.
    assert voices.evict_idle() == ["b"]
    assert set(voices.resident) == {BUNDLED_VOICE, "a"}
    await voices.close()


async def test_a_preloaded_voice_that_is_not_installed_fails_the_start(tmp_path: Path) -> None:
    voices = VoiceRegistry(
        VoiceCatalog([voice_dir(tmp_path, "a")]),
        Loader(),
        default_voice=BUNDLED_VOICE,
        max_resident=2,
        idle_ttl_s=1.0,
        preload=["zz"],
    )
    with pytest.raises(Unsupported, match="preloaded voice 'zz' is not installed"):
        await voices.start()
    await voices.close()


async def test_a_young_voice_is_not_unloaded_to_make_room(tmp_path: Path) -> None:
    loader, clock = Loader(), Clock()
    voices = VoiceRegistry(
        VoiceCatalog([voice_dir(tmp_path, "a", "b")]),
        loader,
        default_voice=BUNDLED_VOICE,
        max_resident=2,
        idle_ttl_s=600.0,
        min_residency_s=30.0,
        clock=clock,
    )
    await voices.start()
    async with voices.lease("a"):
        pass
    clock.now += 5
    async with voices.lease("b"):
        pass
    # a was loaded 5 s ago: the cap is passed rather than a reloaded on the next request.
    assert set(voices.resident) == {BUNDLED_VOICE, "a", "b"}
    clock.now += 30
    async with voices.lease("b"):
        pass
    assert set(voices.resident) == {BUNDLED_VOICE, "b"}
    assert loader.loaded == [BUNDLED_VOICE, "a", "b"]
    await voices.close()


def test_pinned_voices_must_fit_under_the_cap() -> None:
    assert TtsOptions(preload_voices=["a"], max_resident_voices=2).preload_voices == ["a"]
    with pytest.raises(ValidationError, match=r"preloaded voices \(3\) exceed"):
        TtsOptions(preload_voices=["a", "b"], max_resident_voices=2)


async def test_an_operator_loads_and_unloads_a_voice(tmp_path: Path) -> None:
    voices, loader, _clock = await started_registry(tmp_path, cap=3)
    await voices.load("a")
    assert voices.resident == [BUNDLED_VOICE, "a"] and loader.loaded == [BUNDLED_VOICE, "a"]
    await voices.load("a")  # already resident: not loaded again
    assert loader.loaded == [BUNDLED_VOICE, "a"]
    await voices.unload("a")
    assert voices.resident == [BUNDLED_VOICE]
    await voices.unload("a")  # not resident: nothing to do
    assert voices.resident == [BUNDLED_VOICE] and voices.evictions == 1
    await voices.close()


async def test_unloading_a_pinned_a_speaking_or_an_unknown_voice_is_refused(
    tmp_path: Path,
) -> None:
    voices, _loader, _clock = await started_registry(tmp_path, cap=3)
    with pytest.raises(BadRequest, match="pinned"):
        await voices.unload(BUNDLED_VOICE)
    with pytest.raises(Unsupported, match="not installed"):
        await voices.unload("nobody")
    with pytest.raises(Unsupported, match="not installed"):
        await voices.load("nobody")
    async with voices.lease("b"):
        with pytest.raises(Busy, match="speaking 1 stream"):
            await voices.unload("b")
        assert "b" in voices.resident
    await voices.unload("b")  # once the stream ended
    assert voices.resident == [BUNDLED_VOICE]
    await voices.close()
