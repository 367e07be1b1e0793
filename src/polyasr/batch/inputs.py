"""Batch inputs: files, folders (recursively), globs and manifests (.jsonl / .csv) to paths."""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .mp3 .ogg .opus .oga .m4a .aac .wma .aiff .aif .webm .mp4 .m4v .mkv .mov .avi "
    ".mpeg .mpg .3gp .amr".split()
)
"""What a folder or a glob contributes (a file named explicitly is taken whatever its name)."""

MANIFEST_EXTENSIONS = (".jsonl", ".csv")


@dataclass
class Inputs:
    """The audio files a batch gets, in order and without repeats, and the inputs that could
    not be expanded (`(input, reason)`), which count as failed."""

    paths: list[Path] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: Path) -> None:
        path = Path(os.path.abspath(path))
        if path not in self._seen:
            self._seen.add(path)
            self.paths.append(path)

    def __post_init__(self) -> None:
        self._seen: set[Path] = set(self.paths)


def expand_inputs(specs: Iterable[str | Path]) -> Inputs:
    """Every audio file named by `specs`: a file as it is, a manifest's `path` entries
    (relative to the manifest's folder), a folder's audio files recursively, a glob's matches."""
    found = Inputs()
    for spec in specs:
        text = str(spec)
        path = Path(text)
        if path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
            _add_manifest(path, found)
        elif path.is_file():
            found.add(path)
        elif path.is_dir():
            _add_folder(path, found, text)
        elif glob.has_magic(text):
            _add_glob(text, found)
        else:
            found.problems.append((text, f"no such file or folder: {text}"))
    return found


def _is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS


def _add_folder(folder: Path, found: Inputs, spec: str) -> None:
    files = sorted(p for p in folder.rglob("*") if _is_audio(p))
    if not files:
        found.problems.append((spec, f"no audio files in folder {spec}"))
    for path in files:
        found.add(path)


def _add_glob(pattern: str, found: Inputs) -> None:
    matches = [Path(m) for m in sorted(glob.glob(pattern, recursive=True))]
    files = [p for p in matches if _is_audio(p)]
    for folder in (p for p in matches if p.is_dir()):
        files += sorted(p for p in folder.rglob("*") if _is_audio(p))
    if not files:
        found.problems.append((pattern, f"no audio files match {pattern}"))
    for path in files:
        found.add(path)


def _add_manifest(manifest: Path, found: Inputs) -> None:
    """The `path` of every entry; a file that is missing or a bad entry is a problem."""
    try:
        entries = list(_manifest_entries(manifest))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        found.problems.append((str(manifest), f"cannot read manifest {manifest}: {exc}"))
        return
    for where, value in entries:
        if not isinstance(value, str) or not value.strip():
            found.problems.append((where, f"{where}: no 'path' in this entry"))
            continue
        path = Path(value.strip())
        if not path.is_absolute():
            path = manifest.parent / path
        if path.is_file():
            found.add(path)
        else:
            found.problems.append((str(path), f"audio file not found: {path} ({where})"))


def _manifest_entries(manifest: Path) -> Iterable[tuple[str, object]]:
    """(where, path value) per entry of a .jsonl (`{"path": ...}` per line) or a .csv (a
    `path` column) manifest."""
    if manifest.suffix.lower() == ".csv":
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "path" not in (reader.fieldnames or []):
                yield f"{manifest} (no 'path' column)", None
                return
            for number, row in enumerate(reader, 2):
                yield f"{manifest} line {number}", row.get("path")
        return
    with manifest.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                yield f"{manifest} line {number}", None
                continue
            value = entry.get("path") if isinstance(entry, dict) else None
            yield f"{manifest} line {number}", value
