"""Native CAM++ against 3D-Speaker's code on the real weights (fixture: tests/golden/campplus,
made by tests/golden/make_campplus.py), batching, and refusal of hostile or foreign files."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_log_features_close, shared_path
from test_safe_pickle import Payload, pickled

from polyasr.audio.io import load_audio
from polyasr.diarization.campplus import MIN_SAMPLES, kaldi_fbank, load_campplus, pad_waveforms
from polyasr.errors import AudioError, ModelError

GOLDEN = Path(__file__).parent / "golden" / "campplus"
WEIGHTS = ("models", "campplus-zh-en-common", "campplus_cn_en_common.pt")


@pytest.fixture(scope="module")
def reference():
    meta = json.loads((GOLDEN / "reference.json").read_text(encoding="utf-8"))
    arrays = dict(np.load(GOLDEN / "reference.npz"))
    decoded = {}
    clips = []
    for clip in meta["clips"]:
        name = clip["file"]
        if name not in decoded:
            decoded[name] = load_audio(shared_path("data", *name.split("/"))).samples[0]
        first = round(clip["start_s"] * 16000)
        samples = np.ascontiguousarray(decoded[name][first : first + clip["samples"]])
        assert (
            hashlib.sha256(samples.astype("<f4").tobytes()).hexdigest() == (clip["sha256_float32"])
        ), f"{name} decodes to other samples than the reference had"
        clips.append(samples)
    return meta, arrays, clips


@pytest.fixture(scope="module")
def model():
    return load_campplus(shared_path(*WEIGHTS))


def _cosine(e: torch.Tensor) -> np.ndarray:
    e = torch.nn.functional.normalize(e.double(), dim=1)
    return (e @ e.T).numpy()


def test_fbank_matches_kaldi_fbank_of_3d_speaker(model, reference):
    meta, ref, clips = reference
    chosen = meta["feature_clips"]
    batch, lengths = pad_waveforms([clips[i] for i in chosen])
    raw, frames = kaldi_fbank(batch, lengths)
    normalized, frames_again = model.features([clips[i] for i in chosen])
    assert frames.tolist() == frames_again.tolist()
    for row, i in enumerate(chosen):
        n = meta["clips"][i]["frames"]
        assert int(frames[row]) == n
        ref_raw = ref[f"fbank_raw_{i}"]
        assert_log_features_close(raw[row, :n].T, ref_raw.T, ref_raw.T, span=10.0)
        assert_log_features_close(normalized[row, :n].T, ref[f"fbank_{i}"].T, ref_raw.T, span=10.0)
        assert not normalized[row, n:].any()


def test_embeddings_match_3d_speaker(model, reference):
    _, ref, clips = reference
    ours = model.embed(clips).numpy()
    assert ours.shape == ref["embeddings"].shape == (len(clips), 192)
    assert np.abs(ours - ref["embeddings"]).max() <= 1e-4


def test_a_clip_does_not_depend_on_its_batch(model, reference):
    _, _, clips = reference
    alone = torch.cat([model.embed([clip]) for clip in clips])
    together = model.embed(clips)
    assert (together - alone).abs().max() <= 1e-5
    reordered = model.embed(clips[::-1] + clips[:3], batch_size=3)
    assert (reordered[: len(clips)].flip(0) - alone).abs().max() <= 1e-5
    assert (reordered[len(clips) :] - alone[:3]).abs().max() <= 1e-5


def test_same_speaker_is_closer_than_other_speakers(model, reference):
    meta, _, clips = reference
    speakers = [clip["speaker"] for clip in meta["clips"]]
    assert speakers[0] == speakers[1] and len(set(speakers)) == len(speakers) - 1
    cosine = _cosine(model.embed(clips))
    others = [cosine[i, j] for i in (0, 1) for j in range(len(clips)) if j not in (0, 1)]
    assert cosine[0, 1] > max(others) + 0.1
    np.testing.assert_allclose(cosine, np.asarray(meta["cosine"]), atol=1e-5)


def test_short_and_malformed_clips_are_one_line_errors(model):
    clips = [np.zeros(16000, np.float32), np.zeros(MIN_SAMPLES - 1, np.float32)]
    with pytest.raises(AudioError) as info:
        model.embed(clips)
    assert str(info.value) == (
        "clip 1 has 719 samples; a CAM++ embedding needs at least 720 (45 ms at 16 kHz)"
    )
    assert model.embed(clips[:1] + [np.zeros(MIN_SAMPLES, np.float32)]).isfinite().all()
    with pytest.raises(AudioError, match="1-D"):
        model.embed([np.zeros((2, 16000), np.float32)])
    assert model.embed([]).shape == (0, 192)


# ---------------------------------------------------------------------------------------------
# Files that are not a CAM++ checkpoint


def _refused(path: Path, marker: Path | None = None) -> str:
    with pytest.raises(ModelError) as info:
        load_campplus(path)
    message = str(info.value)
    assert "\n" not in message
    assert marker is None or not marker.exists(), "the payload ran"
    return message


@pytest.mark.parametrize("layout", ["plain", "legacy", "zip"])
def test_a_hostile_checkpoint_is_refused_before_its_payload_runs(tmp_path, layout):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "campplus.pt"
    state = {"x": Payload(marker), "head.conv1.weight": torch.zeros(32, 1, 3, 3)}
    path.write_bytes(pickled(state, layout))
    assert _refused(path, marker).startswith(f"refusing {path}: it names posix.system")


@pytest.mark.parametrize("keep", [1 << 20, -4096])
def test_a_truncated_checkpoint_is_one_line(tmp_path, keep):
    data = shared_path(*WEIGHTS).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:keep])
    assert _refused(path).startswith(f"cannot read {path}")


def test_foreign_files_are_one_line(tmp_path):
    assert _refused(tmp_path / "missing.pt") == f"CAM++ model file not found: {tmp_path}/missing.pt"
    text = tmp_path / "notes.pt"
    text.write_text("not a model\n")
    assert "unknown file layout" in _refused(text)
    other = tmp_path / "other.pt"
    other.write_bytes(pickled({"encoder.weight": torch.zeros(3, 3)}, "zip"))
    assert _refused(other) == f"{other} is not a CAM++ checkpoint (it lacks head.conv1.weight)"
    listed = tmp_path / "list.pt"
    listed.write_bytes(pickled([torch.zeros(3)], "zip"))
    assert "no state dict of tensors" in _refused(listed)


def test_an_incomplete_or_reshaped_state_dict_is_one_line(tmp_path):
    from polyasr.safe_pickle import load_pickle

    source = shared_path(*WEIGHTS)
    state = load_pickle(source, str(source))
    del state["xvector.block2.tdnnd7.linear1.weight"]
    path = tmp_path / "incomplete.pt"
    path.write_bytes(pickled(state, "zip"))
    message = _refused(path)
    assert "lacks 1 tensors" in message and "block2.tdnnd7.linear1.weight" in message
    state["xvector.block2.tdnnd7.linear1.weight"] = torch.zeros(128, 400, 1)
    path.write_bytes(pickled(state, "zip"))
    assert "tensor xvector.block2.tdnnd7.linear1.weight is torch.float32 [128, 400, 1]" in (
        _refused(path)
    )
