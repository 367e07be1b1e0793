"""Family-independent orchestration: long audio, batching, stitching."""
