"""Batch transcription of many files into an output folder, resumable, locally or on Ray.

`inputs` expands files, folders, globs and manifests; `records` decides what is finished and
writes results; `local` and `ray_engine` turn paths into transcripts; `runner` ties them
together and writes the summary. Ray is imported only when the Ray engine runs.
"""

from __future__ import annotations

from .runner import ENGINES, ModelSpec, Summary, run_batch

__all__ = ["ENGINES", "ModelSpec", "Summary", "run_batch"]
