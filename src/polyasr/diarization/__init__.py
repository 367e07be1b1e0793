"""Speaker diarization."""
