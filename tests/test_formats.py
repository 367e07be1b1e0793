import json
import re

import pytest

from polyasr import OptionError, PolyasrError, Segment, Transcript, Word
from polyasr.formats import (
    WRITERS,
    formats_for,
    to_json,
    to_rttm,
    to_srt,
    to_txt,
    to_vtt,
    write_atomic,
)
from polyasr.types import Turn

TRANSCRIPT = Transcript(
    text="Hello there. General Kenobi!",
    segments=[
        Segment(
            0.0,
            1.5,
            " Hello there.",
            words=[Word(0.0, 0.6, " Hello", 0.9), Word(0.6, 1.5, " there.", 0.8)],
        ),
        Segment(3661.25, 3663.004, " General Kenobi!", speaker="SPEAKER_1"),
        Segment(3664.0, 3665.0, " "),
    ],
    language="en",
    duration=3665.0,
    processing_seconds=36.65,
    model="whisper-base",
    family="whisper",
    options={"beam_size": 5, "temperatures": [0.0, 0.2]},
)

SRT_CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)\n"
)
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)\n")


def _seconds(h, m, s, ms):
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_srt_parses_back_to_the_segments():
    cues = SRT_CUE.findall(to_srt(TRANSCRIPT))
    assert [int(c[0]) for c in cues] == [1, 2]  # the blank segment is left out
    assert _seconds(*cues[1][1:5]) == 3661.25 and _seconds(*cues[1][5:9]) == 3663.004
    assert cues[0][9] == "Hello there." and cues[1][9] == "[SPEAKER_1] General Kenobi!"


def test_vtt_has_header_and_cues():
    text = to_vtt(TRANSCRIPT)
    assert text.startswith("WEBVTT\n\n")
    cues = VTT_CUE.findall(text)
    assert len(cues) == 2 and _seconds(*cues[0][4:8]) == 1.5


def test_json_round_trips_words_and_timing():
    data = json.loads(to_json(TRANSCRIPT))
    assert data["text"] == TRANSCRIPT.text and data["language"] == "en"
    assert data["segments"][0]["words"][1] == {
        "start": 0.6,
        "end": 1.5,
        "text": " there.",
        "probability": 0.8,
        "speaker": None,
    }
    assert abs(data["rtf"] - 0.01) < 1e-9
    assert Transcript.from_dict(data) == TRANSCRIPT


def test_from_dict_ignores_unknown_keys_and_rejects_non_transcripts():
    data = json.loads(to_json(TRANSCRIPT))
    data["future_field"] = 1
    data["segments"][0]["words"][0]["future"] = True
    assert Transcript.from_dict(data) == TRANSCRIPT
    with pytest.raises(PolyasrError, match="not a transcript"):
        Transcript.from_dict({"segments": [{"start": 0.0}]})


def test_txt_one_line_per_segment():
    assert to_txt(TRANSCRIPT) == "Hello there.\nSPEAKER_1: General Kenobi!\n"
    assert to_txt(Transcript(text="", segments=[])) == ""


def test_every_format_of_all_writes_the_segments_and_unknown_ones_are_refused():
    parsers = {
        "txt": lambda text: text.splitlines(),
        "json": lambda text: [s["text"] for s in json.loads(text)["segments"] if s["text"].strip()],
        "srt": lambda text: SRT_CUE.findall(text),
        "vtt": lambda text: VTT_CUE.findall(text),
    }
    names = formats_for("all")
    assert sorted(names) == sorted(parsers)
    for name in names:
        assert len(parsers[name](WRITERS[name](TRANSCRIPT))) == 2, name
    with pytest.raises(OptionError, match="unknown format 'docx'"):
        formats_for("docx")
    assert formats_for("all", speakers=True) == [*names, "rttm"]
    with pytest.raises(OptionError, match="add --diarize"):
        formats_for("rttm")


def test_speakers_in_txt_vtt_and_rttm():
    turns = [Turn(0.0, 1.5, "SPEAKER_00"), Turn(1.0, 4.25, "SPEAKER_01")]
    segments = [
        Segment(0.0, 1.0, " Hi.", speaker="SPEAKER_00"),
        Segment(1.0, 1.5, " there", speaker="SPEAKER_00"),
        Segment(1.5, 4.25, " Hello!", speaker="SPEAKER_01"),
    ]
    spoken = Transcript("Hi. there Hello!", segments, turns=turns, source="/x/call one.wav")
    assert to_txt(spoken) == "SPEAKER_00: Hi. there\nSPEAKER_01: Hello!\n"
    assert "<v SPEAKER_01>Hello!" in to_vtt(spoken)
    assert to_rttm(spoken).splitlines() == [
        "SPEAKER call_one 1 0.000 1.500 <NA> <NA> SPEAKER_00 <NA> <NA>",
        "SPEAKER call_one 1 1.000 3.250 <NA> <NA> SPEAKER_01 <NA> <NA>",
    ]
    turns_only = Transcript("", [], turns=turns)
    assert to_txt(turns_only) == "SPEAKER_00 0.00 1.50\nSPEAKER_01 1.00 4.25\n"
    assert [c[9] for c in SRT_CUE.findall(to_srt(turns_only))] == ["SPEAKER_00", "SPEAKER_01"]
    assert to_rttm(turns_only).startswith("SPEAKER audio 1 0.000 1.500")


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "a.srt"
    write_atomic(target, "first")
    write_atomic(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.srt"]
