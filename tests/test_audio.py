"""Decoding of every supported container, channel handling, resampling and bad input."""

import av
import numpy as np
import pytest
from conftest import shared_path

from polyasr import AudioError
from polyasr.audio import load_audio
from polyasr.errors import AudioWarning


def _write_video_frames(out, stream):
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _add_video_stream(out):
    stream = out.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    return stream


def _encode(path, samples, rate, codec, video=False):
    """Write stereo float `samples` [2, n] with PyAV (optionally after a video stream)."""
    with av.open(str(path), "w") as out:
        vstream = _add_video_stream(out) if video else None
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        if vstream is not None:
            _write_video_frames(out, vstream)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _best_correlation(decoded, source, max_lag=3000):
    """Correlation of decoded and source audio after undoing the codec's delay."""
    ref = source[max_lag:-max_lag]
    lag = int(np.argmax(np.correlate(decoded[: len(source)], ref, "valid")))
    return np.corrcoef(decoded[lag : lag + len(ref)], ref)[0, 1]


@pytest.fixture(scope="module")
def speech():
    audio = load_audio(shared_path("data", "en", "jfk.flac"))
    return audio.samples[:, : 16000 * 4]


@pytest.mark.parametrize(
    "suffix,codec,video",
    [
        ("wav", "pcm_s16le", False),
        ("flac", "flac", False),
        ("ogg", "libopus", False),
        ("mp3", "libmp3lame", False),
        ("m4a", "aac", False),
        ("mp4", "aac", True),
        ("mkv", "libopus", True),
    ],
)
def test_containers_decode_to_16k_float32(tmp_path, speech, suffix, codec, video):
    rate = 48000 if codec == "libopus" else 44100
    import soxr

    source = soxr.resample(speech.T, 16000, rate).T
    path = tmp_path / f"clip.{suffix}"
    _encode(path, source, rate, codec, video=video)
    audio = load_audio(path)
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32
    assert audio.channels == 2
    assert abs(audio.duration - 4.0) < 0.1
    corr = _best_correlation(audio.mono(), speech.mean(axis=0))
    assert corr > 0.9, f"decoded {suffix} does not resemble the source (corr {corr:.2f})"


def test_channels_are_kept_and_resampled(tmp_path):
    ref = load_audio(shared_path("data", "en", "jfk.flac"))
    assert ref.channels == 2 and ref.sample_rate == 16000
    assert abs(ref.duration - 11.0) < 0.01
    assert np.abs(ref.mono() - ref.samples.mean(axis=0)).max() < 1e-6


def test_arrays_are_taken_as_16k(tmp_path):
    audio = load_audio(np.zeros(1600, np.float32))
    assert audio.samples.shape == (1, 1600) and audio.duration == 0.1


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10), "cannot decode"),
        (lambda p: p.write_text("just some text, not audio\n" * 50), "cannot decode"),
    ],
    ids=["missing", "empty", "corrupt", "text"],
)
def test_bad_files_raise_one_clear_error(tmp_path, make, message):
    path = tmp_path / "input.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        load_audio(path)


def test_directory_and_video_without_audio_are_rejected(tmp_path):
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        _write_video_frames(out, _add_video_stream(out))
    with pytest.raises(AudioError, match="no audio track"):
        load_audio(path)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((0,), np.float32), "must be non-empty"),
        (np.zeros((2, 3, 4), np.float32), "must be non-empty with shape"),
        (np.array([0.1, np.nan, 0.2], np.float32), "NaN or infinite"),
        (np.array([0.1, np.inf], np.float64), "NaN or infinite"),
        (np.zeros(100, np.complex64), "of type complex64"),
        (np.zeros((100, 100), np.float32), "100 channels"),
    ],
)
def test_invalid_arrays_are_rejected(array, message):
    with pytest.raises(AudioError, match=message):
        load_audio(array)


def test_arrays_in_either_channel_layout_and_integer_pcm(speech):
    stereo = speech[:, :16000]  # [2, n]
    by_rows = load_audio(stereo.T.copy())  # [n, 2], as soundfile returns
    assert by_rows.samples.shape == (2, 16000)
    assert np.array_equal(by_rows.samples, stereo)
    pcm16 = np.round(stereo.T * 32767).astype(np.int16)
    assert np.abs(load_audio(pcm16).samples - stereo).max() < 1e-4
    pcm32 = (stereo.T.astype(np.float64) * 2**31).clip(-(2**31), 2**31 - 1).astype(np.int32)
    assert np.abs(load_audio(pcm32).samples - stereo).max() < 1e-6
    pcm8 = np.round(stereo * 127 + 128).astype(np.uint8)
    assert np.abs(load_audio(pcm8).samples - stereo).max() < 1e-2


def test_arrays_at_another_rate_are_resampled(speech):
    import soxr

    at_48k = soxr.resample(speech[0], 16000, 48000).astype(np.float32)
    audio = load_audio(at_48k, input_rate=48000)
    assert audio.samples.shape[1] == speech.shape[1]
    assert _best_correlation(audio.mono(), speech[0], max_lag=100) > 0.99


def test_bytes_and_file_objects_decode_like_the_path():
    path = shared_path("data", "en", "jfk.flac")
    expected = load_audio(path).samples
    assert np.array_equal(load_audio(path.read_bytes()).samples, expected)
    with open(path, "rb") as handle:
        assert np.array_equal(load_audio(handle).samples, expected)
    with pytest.raises(AudioError, match="cannot decode <audio bytes>"):
        load_audio(b"not audio" * 100)
    with pytest.raises(AudioError, match="audio data is empty"):
        load_audio(b"")
    with pytest.raises(AudioError, match="unsupported audio input of type int"):
        load_audio(42)


def test_a_decoding_error_midway_warns_with_how_much_was_read(monkeypatch):
    """FFmpeg skips most damage silently; when it does fail after some frames, the audio read
    so far is kept and a warning says how much that was."""
    path = shared_path("data", "en", "jfk.flac")
    real_open = av.open

    class Failing:
        def __init__(self, container):
            self.container = container
            self.streams = container.streams
            self.duration = container.duration

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.container.close()

        def decode(self, stream):
            for i, frame in enumerate(self.container.decode(stream)):
                if i == 40:
                    raise av.error.InvalidDataError(1094995529, "Invalid data found")
                yield frame

    monkeypatch.setattr(av, "open", lambda *a, **k: Failing(real_open(*a, **k)))
    with pytest.warns(AudioWarning, match=r"decoding stopped after 4\.\d s of 11\.0 s"):
        audio = load_audio(path)
    assert 4.0 < audio.duration < 5.0
