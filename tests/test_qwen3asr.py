"""Qwen3-ASR: parity with the official qwen-asr package on the committed fixture, then the
AsrModel behaviour (long audio, silence, language tags, CLI, broken model directories).

`tests/golden/qwen3-asr-tiny` holds a tiny random-weight model in compact form; the hub-layout
directory the reference ran on is rebuilt by `make_qwen3asr.materialize`. The speech comes from
the shared folder (see the fixture README for the arrays and the attention variants).
"""

import importlib.util
import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_log_features_close, shared_path

import polyasr
from polyasr.audio import load_audio, log_mel
from polyasr.models.qwen3asr.decoding import (
    GenerationConfig,
    IncrementalDecoder,
    RepetitionGuard,
    fix_repetitions,
    greedy_generate,
    parse_output,
)
from polyasr.registry import detect_family

GOLDEN = Path(__file__).parent / "golden"
FIXTURE = GOLDEN / "qwen3-asr-tiny"
REFERENCE = json.loads((FIXTURE / "reference.json").read_text(encoding="utf-8"))
CLIPS = REFERENCE["clips"]
RAW = GenerationConfig(max_new_tokens=REFERENCE["max_new_tokens"], loop_span=None)
"""Generation as the reference ran it: same budget, no loop guard (the package has none)."""


def _make_module():
    spec = importlib.util.spec_from_file_location("make_qwen3asr", GOLDEN / "make_qwen3asr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _make_module()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return MAKE.materialize(FIXTURE, tmp_path_factory.mktemp("qwen3-asr-tiny"))


@pytest.fixture(scope="module")
def model(hub):
    asr = polyasr.load(hub, device="cpu", dtype="float32")
    asr.recognizer.generation = replace(RAW, stop_ids=asr.recognizer.generation.stop_ids)
    return asr


@pytest.fixture(scope="module")
def reference():
    return np.load(FIXTURE / "reference.npz")


@pytest.fixture(scope="module")
def audio():
    """The reference clips read the polyasr way, checked against the samples the package saw."""
    clips = []
    for clip in CLIPS:
        samples = load_audio(shared_path("data", clip["path"])).mono()
        if clip["seconds"]:
            samples = samples[: int(clip["seconds"] * 16000)]
        assert MAKE.sha256(samples) == clip["sha256"]
        clips.append(samples)
    return clips


@contextmanager
def _attention(model, variant):
    model.recognizer.attention = variant
    try:
        yield model
    finally:
        model.recognizer.attention = "windowed"


def _recognize(model, samples, clip, variant="windowed"):
    with _attention(model, variant):
        return model.recognizer.recognize([samples], clip["context"], clip["language"])[0]


def _variants(i):
    return ["windowed", "full"] if CLIPS[i]["full_differs"] else ["windowed"]


def _reference_tokens(reference, variant, i, stop_ids):
    """The package's generated ids without the end token it keeps in its sequences."""
    tokens = reference[f"tokens_{variant}_{i}"].tolist()
    if tokens and tokens[-1] in stop_ids:
        return tokens[:-1]
    assert len(tokens) == REFERENCE["max_new_tokens"]
    return tokens


def test_the_hub_layout_is_detected_and_loaded(hub, model):
    assert detect_family(hub).name == "qwen3-asr"
    assert model.family == "qwen3-asr" and {"en", "ru", "zh"} <= set(model.languages)
    assert model.recognizer.tokenizer.end_ids == (151645, 151643)
    assert model.recognizer.tokenizer.audio_pad == 151676
    assert (
        model.recognizer.thinker.lm_head is None
    )  # tied: the stored lm_head is ignored, as upstream


@pytest.mark.parametrize("i", range(len(CLIPS)))
def test_features_match(model, reference, audio, i):
    mel = model.recognizer.log_mel(torch.from_numpy(audio[i])).numpy()
    edge = REFERENCE["feature_edge"]
    assert mel.shape == (128, CLIPS[i]["frames"])
    raw = log_mel(
        torch.from_numpy(audio[i]), replace(model.recognizer.features, normalize=None)
    ).numpy()
    for part, columns in (("head", slice(None, edge)), ("tail", slice(-edge, None))):
        expected = reference[f"features_{part}_{i}"]
        assert_log_features_close(mel[:, columns], expected, raw[:, columns], span=4.0)
    assert mel.astype(np.float64).sum() == pytest.approx(CLIPS[i]["features_sum"], abs=1e-2)


@pytest.mark.parametrize("i", range(len(CLIPS)))
def test_audio_embeddings_match(model, reference, audio, i):
    for variant in _variants(i):
        with _attention(model, variant):
            (vectors,) = model.recognizer.encode([audio[i]])
        expected = reference[f"audio_{variant}_{i}"]
        assert vectors.shape == expected.shape == (CLIPS[i]["audio_tokens"], 16)
        assert np.abs(vectors.numpy() - expected).max() <= 1e-4


def test_windowed_and_full_attention_differ_beyond_8_seconds(model, reference, audio):
    assert CLIPS[0]["audio_tokens"] > 104 and CLIPS[0]["full_differs"]
    assert [c["full_differs"] for c in CLIPS[1:]] == [False] * (len(CLIPS) - 1)
    windowed, full = reference["audio_windowed_0"], reference["audio_full_0"]
    assert np.abs(windowed[:104] - full[:104]).max() > 1e-3


@pytest.mark.parametrize("i", range(len(CLIPS)))
def test_prompt_ids_are_identical(model, reference, i):
    clip = CLIPS[i]
    ids = model.recognizer.tokenizer.prompt(clip["audio_tokens"], clip["context"], clip["language"])
    assert ids == reference[f"prompt_ids_{i}"].tolist()


@pytest.mark.parametrize("i", range(len(CLIPS)))
def test_logits_match_step_by_step(model, reference, audio, i):
    """Teacher-forced on the reference tokens: every step's logits within 1e-4."""
    first, last = REFERENCE["bpe_size"], REFERENCE["first_added"]
    for variant in _variants(i):
        with _attention(model, variant):
            (vectors,) = model.recognizer.encode([audio[i]])
        prompt = reference[f"prompt_ids_{i}"].tolist()
        decoder = IncrementalDecoder(
            model.recognizer.thinker, [model.recognizer.embed_prompt(prompt, vectors)], 64
        )
        expected = reference[f"logits_{variant}_{i}"]
        tokens = reference[f"tokens_{variant}_{i}"].tolist()
        logits = [decoder.prefill()]
        for token in tokens[: len(expected) - 1]:
            logits.append(decoder.step(torch.tensor([token])))
        full = torch.cat(logits).numpy()
        kept = np.concatenate([full[:, :first], full[:, last : REFERENCE["last_added"] + 1]], 1)
        assert np.abs(kept - expected).max() <= 1e-4
        assert not full[:, first:last].any()  # the zero embedding rows of the filler tokens


@pytest.mark.parametrize("i", range(len(CLIPS)))
def test_greedy_tokens_and_text_are_identical(model, reference, audio, i):
    clip = CLIPS[i]
    for variant in _variants(i):
        result = _recognize(model, audio[i], clip, variant)
        expected = _reference_tokens(reference, variant, i, model.recognizer.tokenizer.end_ids)
        assert result.tokens == expected
        assert result.raw == clip[f"{variant}_raw"]
        assert (result.language, result.text) == (
            clip[f"{variant}_language"],
            clip[f"{variant}_text"],
        )


def test_generation_stops_on_the_end_token(model, reference, audio):
    steps = [c["windowed_steps"] for c in CLIPS]
    assert min(steps) < REFERENCE["max_new_tokens"]  # the fixture has outputs that end early
    for i, clip in enumerate(CLIPS):
        result = _recognize(model, audio[i], clip)
        ended = clip["windowed_steps"] < REFERENCE["max_new_tokens"]
        assert len(result.tokens) == clip["windowed_steps"] - ended


def test_batch_equals_single(model, audio):
    batch = model.recognizer.recognize(audio)
    singles = [model.recognizer.recognize([a])[0] for a in audio]
    assert [b.tokens for b in batch] == [s.tokens for s in singles]
    assert [b.text for b in batch] == [s.text for s in singles]


def test_batch_matches_the_reference_where_settings_agree(model, reference, audio):
    plain = [i for i, c in enumerate(CLIPS) if not c["context"] and not c["language"]]
    results = model.recognizer.recognize([audio[i] for i in plain])
    for i, result in zip(plain, results):
        assert result.tokens == _reference_tokens(
            reference, "windowed", i, model.recognizer.tokenizer.end_ids
        )


@pytest.mark.parametrize("layout", ["sharded", "untied"])
def test_sharded_and_untied_layouts_give_the_same_result(tmp_path, audio, reference, layout):
    hub = MAKE.materialize(
        FIXTURE, tmp_path / layout, shards=2 if layout == "sharded" else 1, tie=layout != "untied"
    )
    if layout == "sharded":
        assert (hub / "model.safetensors.index.json").is_file()
        assert not (hub / "model.safetensors").exists()
    asr = polyasr.load(hub, device="cpu", dtype="float32")
    asr.recognizer.generation = replace(RAW, stop_ids=asr.recognizer.generation.stop_ids)
    assert (asr.recognizer.thinker.lm_head is None) == (layout != "untied")
    i = 3
    result = asr.recognizer.recognize([audio[i]], CLIPS[i]["context"], CLIPS[i]["language"])[0]
    assert result.tokens == _reference_tokens(
        reference, "windowed", i, asr.recognizer.tokenizer.end_ids
    )


def test_language_forcing_by_code_or_name(model, audio):
    clip = CLIPS[3]
    assert clip["language"] == "English" and clip["windowed_text"]
    by_code = model.recognizer.recognize([audio[3]], clip["context"], "en")[0]
    by_name = model.recognizer.recognize([audio[3]], clip["context"], "english")[0]
    assert by_code.prompt == by_name.prompt
    assert (
        by_code.prompt[-4:]
        == model.recognizer.tokenizer.encode("assistant\nlanguage English<asr_text>")[-4:]
    )
    assert (by_code.language, by_code.text) == ("English", clip["windowed_text"])
    with pytest.raises(polyasr.OptionError, match="cannot be forced"):
        model.recognizer.recognize([audio[3]], "", "xx")


@pytest.mark.parametrize(
    "case", REFERENCE["parse_cases"], ids=[str(i) for i in range(len(REFERENCE["parse_cases"]))]
)
def test_output_parsing_matches_the_package(case):
    forced = case["forced"]
    assert parse_output(case["raw"], forced) == (case["language"], case["text"])
    assert fix_repetitions(case["raw"]) == case["fixed"]


def test_repetition_guard_stops_a_loop_and_keeps_one_copy():
    guard = RepetitionGuard(span=12, max_period=4)
    tokens = [7, 8] + [1, 2, 3] * 3
    assert [guard.push(t) for t in tokens] == [0] * len(tokens)
    cuts = [guard.push(t) for t in [1, 2, 3]]
    assert cuts == [0, 0, 9]  # 12 periodic tokens: the last 9 go, one [1, 2, 3] stays
    assert RepetitionGuard(span=32, max_period=20).push(5) == 0


def test_loop_guard_cuts_a_degenerate_generation(model, audio):
    loop = replace(model.recognizer.generation, loop_span=16)
    prompt_vectors = model.recognizer.encode([audio[0]])[0]
    prompt = model.recognizer.tokenizer.prompt(len(prompt_vectors))
    raw = greedy_generate(
        model.recognizer.thinker,
        [model.recognizer.embed_prompt(prompt, prompt_vectors)],
        model.recognizer.generation,
    )[0]
    guarded = greedy_generate(
        model.recognizer.thinker, [model.recognizer.embed_prompt(prompt, prompt_vectors)], loop
    )[0]
    assert len(guarded) < len(raw) and raw[: len(guarded)] == guarded
    assert len(set(raw[len(guarded) :])) == 1 and raw[len(guarded)] == guarded[-1]


# --- the AsrModel API, the long-audio pipeline, the CLI ---------------------------------------


def test_transcribe_forced_language_gives_one_timed_segment(model, audio):
    clip = CLIPS[3]
    budget = REFERENCE["max_new_tokens"]
    result = model.transcribe(audio[3], language="en", vad=False, max_new_tokens=budget)
    assert result.language == "en" and result.text == clip["windowed_text"]
    (segment,) = result.segments
    assert (segment.start, segment.end, segment.language) == (0.0, 0.8, "en")


def test_detected_language_tags_become_transcript_languages(model, monkeypatch):
    """Each piece's `language X<asr_text>` tag is parsed; the transcript gets the language of
    most speech, and Chinese pieces are joined without a space."""
    tags = iter(["language Chinese<asr_text>你好", "language English<asr_text>hello there"])

    def fake_generate(thinker, prompts, config):
        return [model.recognizer.tokenizer.encode(next(tags)) for _ in prompts]

    monkeypatch.setattr("polyasr.models.qwen3asr.recognizer.greedy_generate", fake_generate)
    noise = np.random.default_rng(0).standard_normal(16000 * 45).astype(np.float32) * 0.01
    result = model.transcribe(noise, vad=False, batch_size=1)  # windows of 30 s and 15 s
    assert [s.language for s in result.segments] == ["zh", "en"]
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 30.0), (30.0, 45.0)]
    assert result.language == "zh" and result.text == "你好hello there"


def test_a_long_recording_goes_through_the_vad_pipeline(model):
    path = shared_path("data", "en", "derived_longform_dev.flac")  # 97 s, pauses between clips
    result = model.transcribe(str(path), max_new_tokens=8)
    starts = [s.start for s in result.segments]
    assert len(result.segments) >= 3 and starts == sorted(starts)
    assert all(
        s.end - s.start <= model.recognizer.max_piece_seconds + 1e-6 for s in result.segments
    )
    assert result.segments[-1].end <= result.duration + 1e-6 and result.duration > 95


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_and_noise_give_empty_transcripts(model, kind):
    n = 16000 * 10
    rng = np.random.default_rng(1)
    samples = np.zeros(n, np.float32) if kind == "silence" else rng.standard_normal(n) * 0.05
    result = model.transcribe(samples.astype(np.float32))
    assert result.text == "" and result.segments == [] and result.language is None


def test_no_speech_output_gives_no_segment(model, monkeypatch):
    monkeypatch.setattr(
        "polyasr.models.qwen3asr.recognizer.greedy_generate",
        lambda thinker, prompts, config: (
            [model.recognizer.tokenizer.encode("language None<asr_text>")] * len(prompts)
        ),
    )
    noise = np.random.default_rng(2).standard_normal(16000 * 3).astype(np.float32) * 0.05
    result = model.transcribe(noise, vad=False)
    assert result.text == "" and result.segments == [] and result.language is None


def test_options_that_do_not_apply_are_refused(model):
    with pytest.raises(polyasr.OptionError, match="word times"):
        model.transcribe(np.zeros(16000, np.float32), word_timestamps=True)
    with pytest.raises(polyasr.OptionError, match="no translation"):
        model.transcribe(np.zeros(16000, np.float32), task="translate")
    with pytest.raises(polyasr.OptionError, match="cannot be forced"):
        model.transcribe(np.zeros(16000, np.float32), language="xx")
    with pytest.raises(polyasr.OptionError, match="attention must be one of"):
        model.recognizer.attention = "sliding"


def test_cli_transcribes_with_a_forced_language(hub, tmp_path):
    from polyasr.cli import main

    path = shared_path("data", "ru", "deepspeech_ru.flac")
    code = main(
        ["transcribe", str(path), "--model", str(hub), "--language", "ru", "-f", "json"]
        + ["-o", str(tmp_path), "-q"]
    )
    assert code == 0
    result = json.loads((tmp_path / "deepspeech_ru.json").read_text(encoding="utf-8"))
    assert result["language"] == "ru" and result["duration"] == pytest.approx(5.667, abs=1e-3)


# --- bad model directories ------------------------------------------------------------------


def _edit_json(path, edit):
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


BROKEN = {
    "no vocab": (lambda d: (d / "vocab.json").unlink(), "vocab.json and merges.txt"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
    "pickle only": (
        lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
        "no model.safetensors",
    ),
    "truncated weights": (
        lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64),
        "cannot read weights",
    ),
    "bad json": (lambda d: (d / "config.json").write_text("{"), "not a model polyasr recognizes"),
    "no thinker": (
        lambda d: _edit_json(d / "config.json", lambda c: c.pop("thinker_config")),
        "no thinker_config",
    ),
    "missing field": (
        lambda d: _edit_json(
            d / "config.json", lambda c: c["thinker_config"]["audio_config"].pop("d_model")
        ),
        "lacks the field 'd_model'",
    ),
    "wrong size": (
        lambda d: _edit_json(
            d / "config.json", lambda c: c["thinker_config"]["text_config"].update(hidden_size=32)
        ),
        "output_dim 16 must equal",
    ),
    "wrong layers": (
        lambda d: _edit_json(
            d / "config.json",
            lambda c: c["thinker_config"]["text_config"].update(num_hidden_layers=3),
        ),
        "do not match the model: lacks 11 tensors",
    ),
    "added tokens shifted before the audio pad": (  # ids close up, as in transformers
        lambda d: _edit_json(
            d / "tokenizer_config.json",
            lambda c: c["added_tokens_decoder"].pop("151650"),
        ),
        "says audio_token_id 151676, the tokenizer has <.audio_pad.> = 151675",
    ),
    "aligner": (
        lambda d: _edit_json(
            d / "config.json",
            lambda c: c["thinker_config"].update(model_type="qwen3_forced_aligner"),
        ),
        "ForcedAligner",
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_bad_model_directories_are_clear_errors(tmp_path, broken):
    hub = MAKE.materialize(FIXTURE, tmp_path / "hub")
    damage, message = BROKEN[broken]
    damage(hub)
    with pytest.raises(polyasr.ModelError, match=message):
        polyasr.load(hub, device="cpu")


def test_a_missing_shard_is_a_clear_error(tmp_path):
    hub = MAKE.materialize(FIXTURE, tmp_path / "hub", shards=2)
    (hub / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(polyasr.ModelError, match="missing weight shards"):
        polyasr.load(hub, device="cpu")
