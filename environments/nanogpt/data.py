"""Where each variant's tokens come from: the train stream, the probe set, the validation set.

The run process gets the train stream and the probe set only; the validation set is built in
the verifier's process. For ``speedrun`` the probe set is the tail of the last train shard,
which the train stream never reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import corpus, shards
from .config import RunSpec, default_data_dir, fineweb_dir


class DataMissing(RuntimeError):
    pass


def locate(data_dir: str | Path | None) -> Path:
    """The speedrun's shard directory, for reading and writing alike: ``DATA_DIR/fineweb10B``
    where a directory is given (the ``data_dir`` option, ``progressbench data --dest``), else
    ``$PROGRESSBENCH_DATA/nanogpt/fineweb10B`` or ``~/.cache/progressbench/nanogpt/fineweb10B``."""
    return fineweb_dir(Path(data_dir) if data_dir else None)


def shards_missing(data_dir: str | Path | None) -> str | None:
    """Why the speedrun's shards are not usable where ``locate`` looks, or None when they are."""
    directory = locate(data_dir)
    if shards.train_shards(directory) and (directory / shards.VAL_NAME).exists():
        return None
    # The one mix-up the two ways of naming a place invite: a data root used as the data
    # directory (``--dest $PROGRESSBENCH_DATA``) or the other way round.
    near = Path(data_dir) / "nanogpt" if data_dir else default_data_dir().parent
    if (near / "fineweb10B" / shards.VAL_NAME).exists():
        return (
            f"no FineWeb10B shards in {directory}, but {near / 'fineweb10B'} holds some: move "
            f"them to {directory} or pass `--env-option data_dir={near}`"
        )
    return (
        f"no FineWeb10B shards in {directory}: run `progressbench data nanogpt --variant "
        "speedrun` (its --dest D is what `--env-option data_dir=D` reads)"
    )


def _fineweb(spec: RunSpec) -> Path:
    why = shards_missing(spec.data_dir)
    if why:
        raise DataMissing(why)
    return locate(spec.data_dir)


class TrainStream:
    """The harness's cursor over the train tokens. ``read(n)`` returns ``n + 1`` tokens (inputs
    and shifted targets) and advances by ``n``, so consecutive batches tile the stream."""

    def __init__(self, spec: RunSpec, generate: Callable[[int], np.ndarray] | None = None):
        """``generate(n)``: the tiny corpus's next ``n`` tokens (by default generated here;
        the harness has its timekeeper generate them, so that no pause of its clock is
        CPU time of the training process)."""
        self.tiny = spec.variant == "tiny"
        if self.tiny:
            self._generate = generate or corpus.CorpusStream("train").take
            self._buffer = np.zeros(0, dtype=np.int64)
            self.limit: int | None = None
        else:
            directory = _fineweb(spec)
            self._shards = shards.ShardSet(shards.train_shards(directory))
            self.limit = self._shards.size - spec.probe_tokens - 1
            if self.limit <= 0:
                raise DataMissing(
                    f"the train shards in {directory} hold fewer tokens than the probe set"
                )
        self.position = 0

    def probe(self, n: int) -> np.ndarray:
        """``n + 1`` held-out train-distribution tokens (never yielded by ``read``)."""
        if self.tiny:
            return corpus.split_tokens("probe", n + 1).astype(np.int64)
        return self._shards.read(self._shards.size - n - 1, n + 1)

    def available(self, n: int) -> bool:
        return self.limit is None or self.position + n + 1 <= self.limit

    def pending(self, n: int) -> int:
        """How many tokens must be generated before ``read(n)`` (tiny only; 0 for shards)."""
        if not self.tiny:
            return 0
        return max(0, n + 1 - self._buffer.size)

    def refill(self, n: int) -> None:
        """Generate enough of the tiny corpus for ``read(n)``; the harness pauses its clock
        around this, because making the corpus is not the program's work."""
        need = self.pending(n)
        if need:
            fresh = self._generate(max(need, 1 << 18)).astype(np.int64)
            self._buffer = np.concatenate([self._buffer, fresh])

    def read(self, n: int) -> np.ndarray:
        if self.tiny:
            self.refill(n)
            out = self._buffer[: n + 1]
            self._buffer = self._buffer[n:]
        else:
            out = self._shards.read(self.position, n + 1)
        self.position += n
        return out


def validation_tokens(spec: RunSpec) -> np.ndarray:
    """The first ``val_tokens + 1`` validation tokens (verifier only)."""
    n = spec.val_tokens + 1
    if spec.variant == "tiny":
        return corpus.split_tokens("val", n).astype(np.int64)
    val = shards.open_shard(_fineweb(spec) / shards.VAL_NAME)
    if val.size < n:
        raise DataMissing(f"the validation shard holds {val.size} tokens, fewer than {n}")
    return np.asarray(val[:n], dtype=np.int64)


def fresh_tokens(spec: RunSpec, seed: int) -> np.ndarray | None:
    """Never-seen samples from the validation set's own source, or None where the source is
    finite (speedrun). The seed comes from the verifier's own randomness."""
    if spec.variant != "tiny":
        return None
    return corpus.split_tokens(seed, spec.val_tokens + 1).astype(np.int64)


def protected_paths(spec: RunSpec) -> list[Path]:
    """Files a program may not open: the data the harness owns."""
    if spec.variant == "tiny":
        return []
    return [locate(spec.data_dir)]
