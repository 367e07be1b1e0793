"""Parity of the native Parakeet TDT with NeMo 3.0.0 on the committed fixture, and safe loading.

The fixture (tests/golden/parakeet-tdt-tiny) is a tiny random-weight TDT model with the v3
structure and the real v3 tokenizer, saved by NeMo as a `.nemo` archive, with NeMo's outputs on
English and German speech; see tests/golden/README.md and make_parakeet.py.
"""

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_log_features_close

import polyasr
from polyasr.audio import log_mel
from polyasr.errors import ModelError
from polyasr.models.parakeet.decoding import tdt_greedy
from polyasr.models.transducer import lstm_step

DIRECTORY = Path(__file__).parent / "golden" / "parakeet-tdt-tiny"
ARCHIVE = DIRECTORY / "parakeet-tdt-tiny.nemo"
LANGS = ["en", "de"]


@pytest.fixture(scope="module")
def model():
    return polyasr.load(ARCHIVE, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def reference():
    arrays = np.load(DIRECTORY / "reference.npz")
    return arrays, json.loads((DIRECTORY / "reference.json").read_text(encoding="utf-8"))


def test_loads_the_nemo_archive_by_file_and_directory(model):
    assert model.family == "parakeet"
    assert polyasr.load(DIRECTORY, device="cpu").family == "parakeet"
    assert model.recognizer.model.dims.durations == (0, 1, 2, 3, 4)
    assert (
        model.recognizer.model.dims.xscaling is False
        and model.recognizer.model.dims.use_bias is False
    )


@pytest.mark.parametrize("lang", LANGS)
def test_features_and_encoder_match(model, reference, lang):
    arrays, ref = reference
    audio = arrays[f"{lang}_audio"]
    feats = model.recognizer.log_mel(torch.from_numpy(audio)).numpy()
    unnormalized = replace(model.recognizer.features, normalize=None)
    raw = log_mel(
        torch.from_numpy(audio),
        unnormalized,
        filters=model.recognizer.filters,
        window=model.recognizer.window,
    )
    assert_log_features_close(feats, arrays[f"{lang}_features"], raw[:, : feats.shape[1]], 10.0)
    states, lengths = model.recognizer.encode([audio])
    n = ref["utterances"][lang]["encoder_length"]
    assert int(lengths[0]) == n and states.shape[1] == n
    assert np.abs(states[0].numpy() - arrays[f"{lang}_encoder_out"][:n]).max() <= 1e-4


@torch.inference_mode()
def joint_along_reference_path(model, arrays, ref, lang: str) -> torch.Tensor:
    """Our joint log-probs for the reference's first steps: its encoder output, and its emitted
    tokens replayed through our prediction network (benchmarks/parity_report.py uses it too)."""
    steps = len(arrays[f"{lang}_joint_logits"])
    decisions = ref["utterances"][lang]["decisions"]
    tdt = model.model
    enc = tdt.joint.enc(torch.from_numpy(arrays[f"{lang}_encoder_out"]))
    lstm, embed = tdt.decoder.prediction.dec_rnn.lstm, tdt.decoder.prediction.embed.weight
    h = torch.zeros(lstm.num_layers, 1, lstm.hidden_size)
    g, h, c = lstm_step(lstm, torch.zeros(1, lstm.input_size), h, torch.zeros_like(h))
    t, emitted, blank, rows = 0, 0, ref["blank"], []
    while len(rows) < steps:
        rows.append(tdt.joint(enc[t], tdt.joint.pred(g[0])).log_softmax(-1))
        if int(rows[-1][: blank + 1].argmax()) == blank:
            t += max(ref["durations"][int(rows[-1][blank + 1 :].argmax())], 1)
            continue
        frame, token, duration = decisions[emitted]
        assert (frame, token) == (t, int(rows[-1][: blank + 1].argmax()))
        g, h, c = lstm_step(lstm, embed[token][None], h, c)
        emitted += 1
        t += duration
    return torch.stack(rows)


@pytest.mark.parametrize("lang", LANGS)
def test_joint_logits_along_the_greedy_path(model, reference, lang):
    """NeMo's CPU joint returns log-softmax over all token and duration outputs."""
    arrays, ref = reference
    ours = joint_along_reference_path(model.recognizer, arrays, ref, lang)
    assert (ours - torch.from_numpy(arrays[f"{lang}_joint_logits"])).abs().max() <= 1e-4


@pytest.mark.parametrize("lang", LANGS)
def test_greedy_decisions_text_and_timestamps_match(model, reference, lang):
    arrays, ref = reference
    utterance = ref["utterances"][lang]
    audio = arrays[f"{lang}_audio"]
    states, lengths = model.recognizer.encode([audio])
    spans = tdt_greedy(model.recognizer.model, states, lengths)[0]
    assert [[s.start, s.id, s.end - s.start] for s in spans] == utterance["decisions"]
    segments = model.recognizer.decode([audio], polyasr.TranscribeOptions())[0].segments
    assert " ".join(s.text for s in segments) == utterance["text"]
    duration = len(audio) / 16000
    words = [(w.text, w.start, w.end) for s in segments for w in s.words]
    expected = [
        (w["word"], round(w["start"], 3), round(min(w["end"], duration), 3))
        for w in utterance["words"]
    ]
    assert words == expected
    assert [s.text for s in segments] == [s["segment"] for s in utterance["segments"]]


def test_batch_matches_reference_batch_and_single_calls(model, reference):
    arrays, ref = reference
    audios = [arrays[f"{lang}_audio"] for lang in LANGS]
    states, lengths = model.recognizer.encode(audios)
    assert lengths.tolist() == ref["batch_encoder_lengths"]
    for i, n in enumerate(lengths.tolist()):
        expected = arrays["batch_encoder_out"][i, :n]
        assert np.abs(states[i, :n].numpy() - expected).max() <= 1e-4
    batched = tdt_greedy(model.recognizer.model, states, lengths)
    for i, lang in enumerate(LANGS):
        got = [[s.start, s.id, s.end - s.start] for s in batched[i]]
        assert got == ref["utterances"][lang]["decisions"]
    together = model.transcribe_batch(audios, vad=False)
    alone = [model.transcribe(a, vad=False) for a in audios]
    assert [t.text for t in together] == [t.text for t in alone]
    assert [t.text for t in alone] == [ref["utterances"][lang]["text"] for lang in LANGS]


def test_silence_gives_an_empty_transcript(model):
    assert model.transcribe(np.zeros(16000 * 3, dtype=np.float32)).text == ""


def _archive_with(tmp_path: Path, name: str, add) -> Path:
    """A copy of the fixture archive with one extra member written by `add(tar)`."""
    target = tmp_path / name
    with tarfile.open(ARCHIVE) as source, tarfile.open(target, "w:") as out:
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member) if member.isfile() else None)
        add(out)
    return target


def _file(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_hostile_archives_are_refused(tmp_path, kind):
    def add(out: tarfile.TarFile) -> None:
        if kind == "symlink":
            info = tarfile.TarInfo("./link")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            out.addfile(info)
        else:
            _file(out, "../evil.txt" if kind == "dotdot" else "/tmp/evil.txt", b"x")

    archive = _archive_with(tmp_path, f"{kind}.nemo", add)
    with pytest.raises(ModelError, match="unsafe .nemo archive"):
        polyasr.load(archive, device="cpu")
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing_weights", "has no 'model_weights.ckpt'"),
        ("not_a_tar", "not a readable .nemo archive"),
        ("not_tdt", "only Token-and-Duration Transducer"),
    ],
)
def test_incomplete_or_wrong_archives_are_clear_errors(tmp_path, problem, message):
    target = tmp_path / f"{problem}.nemo"
    if problem == "not_a_tar":
        target.write_bytes(b"definitely not a tar file" * 100)
    else:
        with tarfile.open(ARCHIVE) as source, tarfile.open(target, "w:") as out:
            for member in source.getmembers():
                if not member.isfile():
                    continue
                data = source.extractfile(member).read()
                if member.name.endswith("model_weights.ckpt") and problem == "missing_weights":
                    continue
                if member.name.endswith("model_config.yaml") and problem == "not_tdt":
                    data = data.replace(b"tdt_durations", b"other_key").replace(
                        b"durations:", b"other:"
                    )
                _file(out, member.name, data)
    with pytest.raises(ModelError, match=message):
        polyasr.load(target, device="cpu")


def test_the_graph_step_replayed_past_the_end_decides_the_same(model, reference):
    """What the CUDA graph runs: the step with the prediction network always evaluated, replayed
    in blocks beyond the end of every utterance; finished utterances must not change."""
    from polyasr.models.parakeet import decoding

    arrays, ref = reference
    states, lengths = model.recognizer.encode([arrays[f"{lang}_audio"] for lang in LANGS])
    durations = torch.tensor(model.recognizer.model.dims.durations)
    capacity = int(lengths.max()) * 11 + decoding.REPLAYS_PER_CHECK + 1
    with torch.inference_mode():
        batch = decoding._start(model.recognizer.model, states, lengths, capacity)
        while not batch.finished():
            for _ in range(decoding.REPLAYS_PER_CHECK):
                decoding._step(model.recognizer.model, batch, durations, 10, lazy=False)
    spans = decoding._spans(batch.record[: int(batch.count)], len(LANGS))
    for lang, got in zip(LANGS, spans):
        decisions = [[s.start, s.id, s.end - s.start] for s in got]
        assert decisions == ref["utterances"][lang]["decisions"]


def test_local_attention_limits_what_each_frame_sees(model, reference):
    """With `att_context_size` [w, w] in the config (NeMo's rel_pos_local_attn), an encoder
    frame does not depend on features beyond its receptive field; with full attention it does.
    """
    from dataclasses import replace

    arrays, _ = reference
    feats = torch.from_numpy(arrays["en_features"])[None]
    changed = feats.clone()
    changed[..., -100:] = torch.randn(changed[..., -100:].shape, generator=torch.Generator())
    lengths = torch.tensor([feats.shape[-1] - 1])
    encoder = model.recognizer.model.encoder
    full_dims = encoder.dims

    def encode(x: torch.Tensor, window: int | None) -> torch.Tensor:
        encoder.dims = replace(full_dims, attention_window=window)
        try:
            with torch.inference_mode():
                return encoder(x, lengths)[0][0]
        finally:
            encoder.dims = full_dims

    assert torch.equal(encode(feats, 2)[:20], encode(changed, 2)[:20])
    assert not torch.allclose(encode(feats, None)[:20], encode(changed, None)[:20])
    assert torch.equal(encode(feats, 10_000), encode(feats, None))
