"""A kissing configuration in 11 dimensions: non-zero vectors pairwise >= 60 degrees apart.

construct() returns integer vectors; the harness checks every angle exactly and the score is
how many there are. This one starts from the 220 minimal vectors of the D11 lattice
(+-e_i +- e_j) and adds sign vectors (+-1, ..., +-1), which are 60 degrees or more from all
of them and from each other when they differ in at least 3 signs. Only the EVOLVE block may
change.
"""

import itertools

import numpy as np

DIM = 11


def roots() -> list[np.ndarray]:
    """The 220 minimal vectors of D11: two non-zero coordinates, each +-1."""
    out = []
    for i, j in itertools.combinations(range(DIM), 2):
        for si, sj in itertools.product((1, -1), repeat=2):
            v = np.zeros(DIM, dtype=np.int64)
            v[i], v[j] = si, sj
            out.append(v)
    return out


# EVOLVE-BLOCK-START
ATTEMPTS = 16  # knob: [1, 4096] int log
SEED = 5  # knob: [0, 1000] int
ORDER = "random"  # knob: {"random", "lex"}
MIN_FLIPS = 3  # knob: [3, 6] int


def sign_vectors() -> list[np.ndarray]:
    """Sign vectors, pairwise differing in >= MIN_FLIPS places, greedily in ORDER."""
    if ORDER == "lex":
        pool = [np.array(s) for s in itertools.product((1, -1), repeat=DIM)][:ATTEMPTS]
    else:
        rng = np.random.default_rng(SEED)
        pool = list(rng.choice((1, -1), size=(ATTEMPTS, DIM)))
    chosen: list[np.ndarray] = []
    for s in pool:
        if all(np.count_nonzero(s != c) >= MIN_FLIPS for c in chosen):
            chosen.append(s)
    return chosen


# EVOLVE-BLOCK-END


def construct():
    return [v.tolist() for v in roots() + sign_vectors()]


if __name__ == "__main__":
    print(f"spheres: {len(construct())}")
