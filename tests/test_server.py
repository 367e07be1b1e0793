"""`polyasr serve`: OpenAI's audio routes driven by the real `openai` client against a server
on 127.0.0.1, every response format and error, batching of concurrent requests, the queue and
upload limits, the API key, and a server that survives bad clients. The tiny golden Whisper
(random weights, gibberish text) stands in where only the plumbing is under test; each answer is
compared with the same model called directly."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import wave
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
from conftest import shared_path
from server_fixtures import health, running_server, wait_for

import polyasr
from polyasr.audio.io import load_audio
from polyasr.formats import to_srt, to_vtt
from polyasr.server.config import ServerConfig

FAST = polyasr.TranscribeOptions(beam_size=1, temperatures=(0.0,), max_new_tokens=48)
SHORT = "en/librivox_sense_and_sensibility_01_austen_64kb-0880.flac"
OTHERS = ["en/librivox_sense_and_sensibility_01_austen_64kb-0890.flac", "en/mfa_thoughts.flac"]
LIMIT = 1 << 20


def data(name: str) -> bytes:
    return shared_path("data", name).read_bytes()


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    """16-bit mono WAV of float samples."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def tiny():
    return polyasr.load(shared_path("golden", "whisper-tiny-80"), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def speakers() -> polyasr.DiarizeOptions:
    return polyasr.DiarizeOptions(
        segmentation_model=str(
            shared_path("models", "pyannote-segmentation-3.0", "pytorch_model.bin")
        ),
        embedding_model=str(
            shared_path("models", "campplus-zh-en-common", "campplus_cn_en_common.pt")
        ),
    )


@pytest.fixture(scope="module")
def server(tiny, speakers):
    config = ServerConfig(options=FAST, speakers=speakers, max_upload_bytes=LIMIT)
    with running_server({"tiny": tiny}, config) as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def expected(tiny):
    return tiny.transcribe(data(SHORT), FAST)


def transcribe(client, audio: bytes, **fields):
    return client.audio.transcriptions.create(model="tiny", file=("clip.flac", audio), **fields)


def assert_segments_match(items: list[dict], transcript: polyasr.Transcript) -> None:
    assert [(s["start"], s["end"], s["text"]) for s in items] == [
        (s.start, s.end, s.text) for s in transcript.segments
    ]


def test_every_response_format_matches_a_direct_transcription(client, expected):
    audio = data(SHORT)
    assert expected.text
    assert transcribe(client, audio).text == expected.text
    assert transcribe(client, audio, response_format="text").strip() == expected.text
    assert transcribe(client, audio, response_format="srt") == to_srt(expected)
    assert transcribe(client, audio, response_format="vtt") == to_vtt(expected)
    verbose = transcribe(client, audio, response_format="verbose_json").model_dump()
    assert verbose["text"] == expected.text
    assert verbose["duration"] == pytest.approx(2.99, abs=0.01)
    assert verbose["language"] == expected.language
    assert_segments_match(verbose["segments"], expected)


def test_word_timestamps_come_with_the_word_granularity(client, tiny):
    words = tiny.transcribe(data(SHORT), FAST, word_timestamps=True).segments
    result = transcribe(
        client, data(SHORT), response_format="verbose_json", timestamp_granularities=["word"]
    ).model_dump()
    assert [(w["word"], w["start"], w["end"]) for w in result["words"]] == [
        (w.text.strip(), w.start, w.end) for s in words for w in s.words
    ]
    assert result["words"]


def test_streaming_sends_deltas_segments_and_done(client, expected):
    stream = transcribe(client, data(SHORT), stream=True)
    events = [event.model_dump() for event in stream]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "transcript.text.done"
    assert kinds[:-1] == ["transcript.text.delta", "transcript.text.segment"] * (
        len(kinds[:-1]) // 2
    )
    assert "".join(e["delta"] for e in events if e["type"] == "transcript.text.delta") == (
        expected.text
    )
    assert events[-1]["text"] == expected.text
    segments = [e for e in events if e["type"] == "transcript.text.segment"]
    spoken = [s for s in expected.segments if s.text.strip()]
    assert [(s["start"], s["end"], s["text"]) for s in segments] == [
        (s.start, s.end, s.text.strip()) for s in spoken
    ]


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_route_translates(client, tiny):
    expected = tiny.transcribe(data(SHORT), FAST, task="translate")
    result = client.audio.translations.create(
        model="tiny", file=("clip.flac", data(SHORT)), response_format="verbose_json"
    ).model_dump()
    assert result["task"] == "translate"
    assert result["text"] == expected.text
    assert_segments_match(result["segments"], expected)


def test_diarized_json_has_openai_segments_with_speakers(client, tiny, speakers):
    rate = 16000
    two_voices = load_audio(
        shared_path("data", "diarization", "pyannote_sample.flac"), rate
    ).mono()[: 12 * rate]
    audio = wav_bytes(two_voices)
    expected = tiny.transcribe(audio, FAST, diarize=speakers)
    result = transcribe(client, audio, response_format="diarized_json")
    body = result.model_dump()
    spoken = [s for s in expected.segments if s.text.strip()]
    assert [(s["start"], s["end"], s["text"], s["speaker"]) for s in body["segments"]] == [
        (s.start, s.end, s.text.strip(), s.speaker) for s in spoken
    ]
    assert {s["type"] for s in body["segments"]} == {"transcript.text.segment"}
    assert [s["id"] for s in body["segments"]][:2] == ["seg_0", "seg_1"]
    assert all(s["speaker"] for s in body["segments"])
    assert len({t.speaker for t in expected.turns}) == 2


def test_models_are_listed_and_retrieved(client, server):
    assert [m.id for m in client.models.list()] == ["tiny"]
    assert client.models.retrieve("tiny").owned_by == "polyasr"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("whisper-1")


def test_api_key_guards_every_route_but_health(tiny):
    config = ServerConfig(api_key="s3cret", options=FAST)
    with running_server({"tiny": tiny}, config) as (url, _):
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.models.list()
        assert caught.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            transcribe(bad, data(SHORT))
        for route in ("/v1/models", "/v1/models/tiny"):
            missing = httpx.get(f"{url}{route}")
            assert missing.status_code == 401 and "missing API key" in missing.text
        posted = httpx.post(f"{url}/v1/audio/translations", files={"file": ("a", b"x")})
        assert posted.status_code == 401
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in good.models.list()] == ["tiny"]
        assert transcribe(good, data(SHORT)).text
        assert health(url)["status"] == "ok"


@pytest.mark.parametrize(
    ("fields", "status", "param", "code"),
    [
        ({"model": "whisper-1"}, 404, "model", "model_not_found"),
        ({"response_format": "xml"}, 400, "response_format", "invalid_value"),
        ({"temperature": 1.5}, 400, "temperature", "invalid_value"),
        ({"temperature": -0.1}, 400, "temperature", "invalid_value"),
        ({"timestamp_granularities": ["char"]}, 400, "timestamp_granularities", "invalid_value"),
        ({"language": "xx"}, 400, None, "invalid_option"),
    ],
)
def test_bad_fields_get_openai_errors(client, fields, status, param, code):
    arguments = {"model": "tiny", "file": ("clip.flac", data(SHORT)), **fields}
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(**arguments)
    assert caught.value.status_code == status
    error = caught.value.body
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("audio", "words"),
    [(b"", "empty"), (b"RIFF\x00\x00 certainly not audio" * 50, "cannot decode")],
)
def test_empty_or_corrupt_audio_is_a_400(client, audio, words):
    with pytest.raises(openai.BadRequestError) as caught:
        transcribe(client, audio)
    assert caught.value.body["param"] == "file"
    assert words in caught.value.body["message"]


def test_missing_file_unknown_field_and_malformed_body_are_400(server):
    url = f"{server[0]}/v1/audio/transcriptions"
    missing = httpx.post(url, data={"model": "tiny"}, files={"other": ("a", b"x")})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "other"
    missing = httpx.post(url, data={"model": "tiny"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    no_model = httpx.post(url, files={"file": ("a.flac", data(SHORT))})
    assert no_model.json()["error"]["param"] == "model"
    garbage = httpx.post(
        url,
        content=b"--x\r\nnot a part\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert garbage.status_code == 400 and "malformed" in garbage.json()["error"]["message"]
    assert httpx.get(f"{server[0]}/no/such/route").json()["error"]["code"] == "http_404"


def test_oversize_upload_is_a_413_and_the_server_stays_up(client, server):
    with pytest.raises(openai.APIStatusError) as caught:
        transcribe(client, os.urandom(16 * LIMIT))
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "file_too_large"
    assert health(server[0])["status"] == "ok"


def test_oversize_content_length_is_refused_before_the_body_is_sent(server):
    host, port = server[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413")


def test_chunked_upload_over_the_limit_is_a_413(server):
    def body():
        yield b"--x\r\nContent-Disposition: form-data; name=file; filename=a\r\n\r\n"
        for _ in range(LIMIT // 4096 + 2):
            yield b"\0" * 4096

    answer = httpx.post(
        f"{server[0]}/v1/audio/transcriptions",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert answer.status_code == 413


def test_server_survives_clients_that_disconnect_mid_upload(server, client, expected):
    host, port = server[0].removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: multipart/form-data; boundary=x\r\n"
                b"Content-Length: 100000\r\n\r\n--x\r\n"
                b'Content-Disposition: form-data; name="file"; filename="a.flac"\r\n\r\n'
                + data(SHORT)[:2000]
            )
    assert transcribe(client, data(SHORT)).text == expected.text


def test_concurrent_requests_share_batches_grouped_by_options(tiny):
    names = [SHORT, *OTHERS]
    wanted = {
        (n, lang): tiny.transcribe(data(n), FAST, language=lang)
        for n in names
        for lang in ("en", "de")
    }
    config = ServerConfig(options=FAST, batch_wait_s=0.5)
    with running_server({"tiny": tiny}, config) as (url, app):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        jobs = [(n, lang) for n in names for lang in ("en", "de")]
        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(
                pool.map(lambda job: transcribe(client, data(job[0]), language=job[1]).text, jobs)
            )
        assert answers == [wanted[job].text for job in jobs]
        assert app.state.workers["tiny"].batches < len(jobs)


class Gated:
    """The tiny model behind a gate: each batch waits until the test opens it, so that the
    queue can be filled while a batch is in progress."""

    def __init__(self, model) -> None:
        self.model = model
        self.family = model.family
        self.gate = threading.Event()

    def resolve_options(self, options, overrides):
        return self.model.resolve_options(options, overrides)

    def transcribe_batch(self, audios, options):
        self.gate.wait(timeout=60)
        return self.model.transcribe_batch(audios, options)


def test_full_queue_answers_503_and_keeps_the_waiting_requests(tiny, expected):
    gated = Gated(tiny)
    config = ServerConfig(options=FAST, max_queue=1, batch_wait_s=0.0)
    with running_server({"tiny": gated}, config) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(transcribe, client, data(SHORT))
            wait_for(lambda: health(url)["models"]["tiny"]["busy"] == 1)
            second = pool.submit(transcribe, client, data(SHORT))
            wait_for(lambda: health(url)["models"]["tiny"]["queued"] == 1)
            with pytest.raises(openai.InternalServerError) as caught:
                transcribe(client, data(SHORT))
            assert caught.value.status_code == 503
            assert caught.value.response.headers["retry-after"] == "1"
            assert caught.value.body["code"] == "server_busy"
            gated.gate.set()
            assert first.result().text == second.result().text == expected.text


def test_export_route_writes_the_page_downloads(server, client, expected):
    verbose = transcribe(client, data(SHORT), response_format="verbose_json").model_dump()
    url = f"{server[0]}/v1/transcripts/export"
    assert httpx.post(url, params={"format": "srt"}, json=verbose).text == to_srt(expected)
    assert httpx.post(url, params={"format": "vtt"}, json=verbose).text == to_vtt(expected)
    text = httpx.post(url, params={"format": "txt"}, json=verbose).text
    assert text.split() == expected.text.split()
    assert json.loads(httpx.post(url, params={"format": "json"}, json=verbose).text) == verbose
    bad = httpx.post(url, params={"format": "srt"}, json={"segments": [{}]})
    assert bad.status_code == 400 and "verbose_json" in bad.json()["error"]["message"]
    assert httpx.post(url, params={"format": "doc"}, json=verbose).status_code == 400


def test_import_polyasr_does_not_import_the_server_stack():
    code = "import sys, polyasr; print(sorted({'fastapi', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_serve_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    from polyasr.cli import main

    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", "--model", "whisper-base"]) == 1
    assert capsys.readouterr().err == (
        "error: the server needs its extra: pip install 'polyasr[server]'\n"
    )


def test_serve_command_starts_a_server_with_an_api_key_from_the_environment(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    model = shared_path("golden", "whisper-tiny-80")
    env = {**os.environ, "POLYASR_API_KEY": "k1"}
    command = [sys.executable, "-m", "polyasr.cli", "serve", "--model", f"tiny={model}"]
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [*command, "--port", str(port), "--beam-size", "1"], env=env, stderr=log, stdout=log
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"{url}/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k1", max_retries=0)
        assert [m.id for m in client.models.list()] == ["tiny"]
        assert httpx.get(f"{url}/v1/models").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert '"GET /v1/models" 200' in (tmp_path / "server.log").read_text()


def test_served_models_are_named_by_id_path_or_name(tmp_path):
    from polyasr.server.launch import model_id, serve

    model = shared_path("golden", "whisper-tiny-80")
    assert model_id(f"tiny={model}") == ("tiny", f"tiny={model}".partition("=")[2])
    assert model_id(str(model)) == ("whisper-tiny-80", str(model))
    assert model_id("openai/whisper-base") == ("openai/whisper-base", "openai/whisper-base")
    with pytest.raises(polyasr.OptionError, match="two models are named 'whisper-tiny-80'"):
        serve([str(model), f"whisper-tiny-80={model}"], ServerConfig(), "127.0.0.1", 0)
