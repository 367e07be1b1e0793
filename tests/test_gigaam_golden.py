"""Parity of the native GigaAM v3 with the official package on the committed fixtures.

The fixtures (tests/golden/gigaam-*) are tiny random-weight models in the published `.ckpt`
layout with the official code's outputs on real Russian speech; see their README.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_log_features_close

import polyasr
from polyasr.models.gigaam.decoding import ctc_greedy, rnnt_greedy

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module", params=["gigaam-v3-ctc", "gigaam-v3-e2e-rnnt"])
def fixture(request):
    directory = GOLDEN / request.param
    model = polyasr.load(directory, device="cpu", dtype="float32").recognizer
    reference = np.load(directory / "reference.npz")
    inputs = np.load(directory / "inputs.npz")
    texts = json.loads((directory / "reference.json").read_text(encoding="utf-8"))
    return model, reference, inputs, texts


def _audio(inputs, i):
    return inputs[f"audio_{i}"]


def test_loads_the_published_checkpoint_layout(fixture):
    model, *_ = fixture
    assert model.family == "gigaam" and model.languages == ("ru",)


@pytest.mark.parametrize("i", [0, 1])
def test_features_and_encoder_match(fixture, i):
    model, ref, inputs, _ = fixture
    feats = model.log_mel(torch.from_numpy(_audio(inputs, i)))
    assert_log_features_close(feats, ref[f"features_{i}"], feats, span=10.0)
    states, lengths = model.encode([_audio(inputs, i)])
    expected = ref[f"encoder_out_{i}"]
    assert int(lengths[0]) == int(ref[f"encoded_len_{i}"])
    error = np.abs(states[0].numpy() - expected).max() / np.abs(expected).max()
    assert error <= 1e-4


@pytest.mark.parametrize("i", [0, 1])
def test_decoding_matches(fixture, i):
    model, ref, inputs, _ = fixture
    states, lengths = model.encode([_audio(inputs, i)])
    n = int(lengths[0])
    if model.model.head_type == "ctc":
        log_probs = model.model.head(states)[0]
        assert np.abs(log_probs[:n].numpy() - ref[f"log_probs_{i}"]).max() <= 1e-4
        tokens, frames = ctc_greedy(log_probs, n, model.blank)
    else:
        ((tokens, frames),) = rnnt_greedy(model.model.head, states, lengths, model.blank)
    assert tokens == ref[f"tokens_{i}"].tolist()
    assert frames == ref[f"token_frames_{i}"].tolist()


def test_batch_equals_single(fixture):
    model, ref, inputs, _ = fixture
    states, lengths = model.encode([_audio(inputs, 0), _audio(inputs, 1)])
    assert lengths.tolist() == ref["batch_lengths"].tolist()
    for i in range(2):
        n = int(lengths[i])
        single, _ = model.encode([_audio(inputs, i)])
        assert torch.allclose(states[i, :n], single[0, :n], atol=1e-5)
        assert np.abs(states[i, :n].numpy() - ref["batch_encoder_out"][i, :n]).max() <= 1e-4


@pytest.mark.parametrize("i", [0, 1])
def test_text_and_word_timestamps_match(fixture, i):
    model, _, inputs, texts = fixture
    expected = texts["utterances"][i]
    options = polyasr.TranscribeOptions(vad=False)
    (segment,) = model.decode([_audio(inputs, i)], options)[0].segments
    assert segment.text == expected["text"].strip()
    assert [w.text for w in segment.words] == [w["text"] for w in expected["words"]]
    for word, ref in zip(segment.words, expected["words"]):
        assert word.start == pytest.approx(ref["start"], abs=1e-3)
        assert word.end == pytest.approx(ref["end"], abs=1e-3)


def test_rnnt_joint_log_probs_along_the_greedy_path():
    directory = GOLDEN / "gigaam-v3-e2e-rnnt"
    model = polyasr.load(directory, device="cpu", dtype="float32").recognizer
    ref, inputs = np.load(directory / "reference.npz"), np.load(directory / "inputs.npz")
    head = model.model.head
    states, lengths = model.encode([_audio(inputs, 0)])
    frames, tokens = ref["rnnt_frames_0"].tolist(), ref["rnnt_tokens_0"].tolist()
    enc = head.joint.enc(states[0])
    g, state = head.decoder.lstm(states.new_zeros(1, 1, head.decoder.lstm.input_size))
    joints = []
    with torch.inference_mode():
        for t, k in zip(frames, tokens):
            logits = head.joint.joint_net(enc[t] + head.joint.pred(g[0, 0]))
            joints.append(logits.log_softmax(-1))
            if k != model.blank:
                g, state = head.decoder.lstm(head.decoder.embed.weight[k].view(1, 1, -1), state)
    joint = torch.stack(joints).numpy()
    assert np.abs(joint - ref["rnnt_joint_0"]).max() <= 1e-4  # log-probabilities


def test_batched_decoding_equals_one_by_one(fixture):
    model, ref, inputs, _ = fixture
    audios = [_audio(inputs, 0), _audio(inputs, 1)]
    together = model.recognize(audios)
    alone = [model.recognize([a])[0] for a in audios]
    assert together == alone
    assert together[0][0] == ref["tokens_0"].tolist()
