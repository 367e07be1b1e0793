"""Who spoke when: speaker segmentation (pyannote's segmentation-3.0 network in plain PyTorch)
and the pieces that turn it into speaker turns."""
