"""Parity with the Hugging Face reference outputs of the tiny random-weight fixtures."""

import numpy as np
import pytest
import torch
from conftest import shared_path

import polyasr
from polyasr.models.whisper.decoding import DecodeConfig, decode_windows

FIXTURES = ["whisper-tiny-80", "whisper-tiny-128"]


@pytest.fixture(scope="module", params=FIXTURES)
def golden(request):
    directory = shared_path("golden", request.param)
    model = polyasr.load(directory, device="cpu", dtype="float32").recognizer
    return model, np.load(directory / "reference.npz"), np.load(directory / "inputs.npz")


def _max_abs(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def test_encoder_matches(golden):
    model, ref, _ = golden
    features = torch.from_numpy(ref["features"])[None]
    with torch.inference_mode():
        embed = model.model.encoder.embed(features)[0]
        out = model.model.encoder(features)[0]
    assert _max_abs(embed, ref["encoder_embed"]) <= 1e-4
    assert _max_abs(out, ref["encoder_out"]) <= 1e-4


def test_teacher_forced_logits_hidden_and_alignment_attention_match(golden):
    model, ref, _ = golden
    w = model.model
    with torch.inference_mode():
        states = w.encoder(torch.from_numpy(ref["features"])[None])
        cache = w.new_cache(1)
        w.decoder.set_audio(cache, states)
        hidden, scores = w.decoder(torch.from_numpy(ref["prompt_ids"])[None], cache, True)
        logits = w.decoder.logits(hidden)[0]
    assert _max_abs(hidden[0], ref["decoder_hidden"]) <= 1e-4
    assert _max_abs(logits, ref["logits"]) <= 1e-4
    attn = torch.stack([scores[layer][0, head].softmax(-1) for layer, head in w.alignment_heads])
    assert attn.shape == ref["alignment_cross_attn"].shape
    assert _max_abs(attn, ref["alignment_cross_attn"]) <= 1e-5


@pytest.mark.parametrize("timestamps", [False, True])
def test_greedy_tokens_identical(golden, timestamps):
    model, ref, _ = golden
    suffix = "_timestamps" if timestamps else ""
    prompt = ref["prompt_ids" + suffix].tolist()[: 4 - int(timestamps)]
    config = DecodeConfig(
        sample_len=20,
        timestamps=timestamps,
        suppress_tokens=model.suppress_tokens,
        max_initial_timestamp_index=model.max_initial_timestamp_index,
    )
    with torch.inference_mode():
        states = model.model.encoder(torch.from_numpy(ref["features"])[None])
    result = decode_windows(model.model, model.tokenizer, states, prompt, config)[0]
    assert result.tokens == ref["greedy_tokens" + suffix].tolist()


def test_tokenizer_special_ids_follow_vocab_size(golden):
    model, ref, _ = golden
    tok = model.tokenizer
    assert ref["prompt_ids"].tolist()[:4] == [
        tok.sot,
        tok.language_ids["en"],
        tok.transcribe,
        tok.no_timestamps,
    ]
    assert tok.encode(" Please call Stella.") == ref["prompt_ids"].tolist()[4:]
