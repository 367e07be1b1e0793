"""Speaker clustering of (window, local speaker) embeddings with an automatic speaker count.

Agglomerative clustering with centroid linkage on unit-normalized embeddings, cut at a
distance threshold; clusters smaller than `min_cluster_size` are folded into the nearest large
one; a requested number (or range) of speakers moves the cut to the dendrogram level that gives
it. Then every embedding goes to the nearest centroid, the two speakers of one window never to
the same cluster. This is the recipe of pyannote.audio 3.x's `AgglomerativeClustering`.
"""

from __future__ import annotations

import numpy as np


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def speaker_range(
    count: int, num: int | None, low: int | None, high: int | None
) -> tuple[int, int]:
    """(fewest, most) clusters allowed for `count` embeddings."""
    fewest = max(1, min(count, num or low or 1))
    most = max(1, min(count, num or high or count))
    return min(fewest, most), most


def _large(labels: np.ndarray, min_size: int) -> np.ndarray:
    found, sizes = np.unique(labels, return_counts=True)
    return found[sizes >= min_size]


def agglomerate(
    embeddings: np.ndarray,
    threshold: float,
    min_cluster_size: int,
    fewest: int,
    most: int,
) -> np.ndarray:
    """Cluster index (0..K-1) of each embedding [N, d], K in [fewest, most] when possible."""
    from scipy.cluster.hierarchy import fcluster, linkage

    count = len(embeddings)
    if count == 1:
        return np.zeros(1, dtype=int)
    min_size = min(min_cluster_size, max(1, round(0.1 * count)))
    tree = linkage(unit(embeddings), method="centroid", metric="euclidean")
    labels = fcluster(tree, threshold, criterion="distance") - 1
    large = _large(labels, min_size)
    target = None if fewest <= len(large) <= most else (fewest if len(large) < fewest else most)
    if target is not None:
        # walk the merge steps from the one nearest the threshold outwards, cutting by step
        steps = tree.copy()
        steps[:, 2] = np.arange(count - 1)
        best = (abs(len(large) - target), labels, large)
        for step in np.argsort(np.abs(tree[:, 2] - threshold)):
            if steps[step, 3] < min_size:
                continue
            candidate = fcluster(steps, step, criterion="distance") - 1
            candidate_large = _large(candidate, min_size)
            if abs(len(candidate_large) - target) < best[0]:
                best = (abs(len(candidate_large) - target), candidate, candidate_large)
            if len(candidate_large) == target:
                break
        _, labels, large = best
    if len(large) == 0:
        return np.zeros(count, dtype=int)
    small = np.setdiff1d(np.unique(labels), large)
    if len(small):
        normed = unit(embeddings)
        centre = {k: normed[labels == k].mean(axis=0) for k in np.unique(labels)}
        large_centres = unit(np.stack([centre[k] for k in large]))
        for k in small:
            nearest = large[int(np.argmax(large_centres @ unit(centre[k])))]
            labels[labels == k] = nearest
    return np.unique(labels, return_inverse=True)[1]


def assign(
    embeddings: np.ndarray, labels: np.ndarray, windows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Centroids [K, d] of the clusters, and the cluster of every embedding: the nearest
    centroid by cosine similarity; with `windows` [N], the local speakers of one window are
    assigned together so that no two of them share a cluster (Hungarian assignment)."""
    from scipy.optimize import linear_sum_assignment

    normed = unit(embeddings)
    clusters = int(labels.max()) + 1
    centroids = unit(np.stack([normed[labels == k].mean(axis=0) for k in range(clusters)]))
    similarity = normed @ centroids.T
    result = similarity.argmax(axis=1)
    for window in np.unique(windows) if windows is not None else []:
        rows = np.flatnonzero(windows == window)
        if len(rows) > 1 and clusters > 1:
            picked, chosen = linear_sum_assignment(similarity[rows], maximize=True)
            result[rows] = -1
            result[rows[picked]] = chosen
            unmatched = rows[result[rows] == -1]  # more local speakers than clusters
            result[unmatched] = similarity[unmatched].argmax(axis=1)
    return centroids, result
