"""Real photos as model inputs: random square crops of scikit-learn's two sample photographs (extra `data`),
resized and scaled to [-1, 1], seeded. Used by the float .tflite tests and benchmarks/quantizer_recipe.py."""

from __future__ import annotations

import numpy as np


def sample_crops(n: int, seed: int, size: int = 128) -> np.ndarray:
    """``n`` random square crops (``size`` x ``size`` x 3, float32 in [-1, 1]) of the sample photos."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(rng.integers(size, min(photo.shape[:2])))
        top, left = int(rng.integers(0, photo.shape[0] - side)), int(rng.integers(0, photo.shape[1] - side))
        crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((size, size))
        out.append(np.asarray(crop, np.float32) / 127.5 - 1.0)
    return np.stack(out)
