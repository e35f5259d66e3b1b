"""Token shards in the modded-nanogpt / llm.c format, and fetching FineWeb10B ones.

A shard is a header of 256 little-endian int32 (magic 20240520, version 1, token count, the
rest zero) followed by that many uint16 GPT-2 token ids.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TRAIN_GLOB = "fineweb_train_*.bin"
VAL_NAME = "fineweb_val_000000.bin"
# Each FineWeb10B train shard holds 100M tokens. The speedrun reference trains on 3000 steps of
# 512 x 1024 tokens (1.57B) and its probe set is the last shard's tail: 24 shards (2.4B) leave
# it half again as many, room for a program that trains longer.
TOKENS_PER_SHARD = 100_000_000
DEFAULT_TRAIN_SHARDS = 24


class ShardError(ValueError):
    pass


class FetchError(RuntimeError):
    """A shard could not be downloaded (no network, no huggingface_hub, the hub refused)."""


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """Write ``tokens`` (ids < 65536) as one shard."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**16):
        raise ShardError("shard tokens must fit in uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, VERSION, tokens.size)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2").tobytes())


def read_header(path: Path) -> int:
    """The token count of a shard, after checking its header and size."""
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: shorter than the 1024-byte header")
    header = np.frombuffer(raw, dtype="<i4")
    if header[0] != MAGIC:
        raise ShardError(f"{path}: bad magic {header[0]} (expected {MAGIC})")
    if header[1] != VERSION:
        raise ShardError(f"{path}: unsupported version {header[1]} (expected {VERSION})")
    count = int(header[2])
    size = path.stat().st_size
    if size != HEADER_BYTES + 2 * count:
        raise ShardError(
            f"{path}: header says {count} tokens but the file holds {(size - HEADER_BYTES) / 2:g}"
        )
    return count


def open_shard(path: Path) -> np.ndarray:
    """A read-only memory map of the shard's tokens."""
    count = read_header(path)
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(count,))


def train_shards(directory: Path) -> list[Path]:
    return sorted(directory.glob(TRAIN_GLOB))


class ShardSet:
    """Train shards seen as one token array, read in contiguous slices."""

    def __init__(self, paths: list[Path]):
        if not paths:
            raise ShardError("no shards given")
        self.paths = paths
        self.maps = [open_shard(p) for p in paths]
        self.starts = np.cumsum([0] + [m.size for m in self.maps])
        self.size = int(self.starts[-1])

    def read(self, start: int, n: int) -> np.ndarray:
        """Tokens ``start .. start + n - 1`` as int64 (they may span shards)."""
        if start < 0 or start + n > self.size:
            raise ShardError(f"read of {n} tokens at {start} is past the end ({self.size} tokens)")
        out = np.empty(n, dtype=np.int64)
        pos = 0
        shard = int(np.searchsorted(self.starts, start, side="right")) - 1
        while pos < n:
            offset = start + pos - int(self.starts[shard])
            take = min(n - pos, self.maps[shard].size - offset)
            out[pos : pos + take] = self.maps[shard][offset : offset + take]
            pos += take
            shard += 1
        return out


Downloader = Callable[..., str]


def train_name(index: int) -> str:
    return f"fineweb_train_{index:06d}.bin"


def fetch_fineweb(
    dest: Path, train_shards_wanted: int, repo: str, download: Downloader | None = None
) -> list[Path]:
    """Download the validation shard and the first train shards into ``dest`` (skipping those
    already there and valid). ``download`` defaults to ``huggingface_hub.hf_hub_download``."""
    by_hand = (
        f"or copy {VAL_NAME} and {train_name(1)} .. {train_name(train_shards_wanted)}, "
        f"fetched where there is a network, into {dest} by hand"
    )
    if download is None:
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise FetchError(
                f"fetching FineWeb10B needs huggingface_hub (pip install huggingface_hub), {by_hand}"
            ) from None
        download = hf_hub_download
    dest.mkdir(parents=True, exist_ok=True)
    names = [VAL_NAME] + [train_name(i) for i in range(1, train_shards_wanted + 1)]
    paths = []
    for name in names:
        path = dest / name
        try:
            read_header(path)
        except (OSError, ShardError):
            try:
                got = Path(
                    download(repo_id=repo, filename=name, repo_type="dataset", local_dir=str(dest))
                )
            # huggingface_hub's errors, offline ones included, are OSErrors; their first
            # sentence says what failed, the rest is advice that does not apply here.
            except OSError as exc:
                reason = str(exc).strip().split("\n")[0].split(". ")[0] or type(exc).__name__
                raise FetchError(
                    f"could not download {name} from the Hugging Face dataset {repo} ({reason}): "
                    f"run again with network access, {by_hand}"
                ) from None
            if got.resolve() != path.resolve():
                got.replace(path)
            read_header(path)  # a truncated or foreign download fails here, by name
        paths.append(path)
    return paths
