"""Score predict() on held-out points of a smooth curve (OpenEvolve format, no cascade)."""

import importlib.util

import numpy as np


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(7)
    xs = np.linspace(-1, 1, 40)
    ys = np.sin(2 * xs) + 0.05 * rng.standard_normal(xs.size)
    held_out = np.linspace(-0.95, 0.95, 17)
    predicted = np.asarray(module.predict(xs, ys, held_out), dtype=float)
    if predicted.shape != held_out.shape or not np.all(np.isfinite(predicted)):
        return {"combined_score": 0.0, "error": "predict() must give one finite value a point"}
    mse = float(np.mean((predicted - np.sin(2 * held_out)) ** 2))
    return {"combined_score": 1.0 / (1.0 + 10.0 * mse), "mse": mse}
