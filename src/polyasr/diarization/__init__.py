"""Who spoke when: speaker segmentation, speaker embeddings, clustering and the steps that
turn them into speaker turns."""
