"""Shards in the modded-nanogpt format, the harness's token streams, and fetching FineWeb10B
through huggingface_hub (against a local fake hub, never the network)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from progressbench_environments.nanogpt import data, shards
from progressbench_environments.nanogpt.config import make_spec
from progressbench_environments.nanogpt.env import NanoGPT


def write_fineweb(directory: Path, train_sizes: list[int], val_size: int, seed: int = 0) -> Path:
    """FineWeb-style shards with random GPT-2 token ids; returns the fineweb10B directory."""
    rng = np.random.default_rng(seed)
    fw = directory / "fineweb10B"
    fw.mkdir(parents=True, exist_ok=True)
    shards.write_shard(fw / shards.VAL_NAME, rng.integers(0, 50257, val_size))
    for i, size in enumerate(train_sizes, start=1):
        shards.write_shard(fw / f"fineweb_train_{i:06d}.bin", rng.integers(0, 50257, size))
    return fw


def test_shard_round_trip_and_header(tmp_path: Path) -> None:
    tokens = np.array([0, 1, 50256, 65535, 7], dtype=np.int64)
    path = tmp_path / "s.bin"
    shards.write_shard(path, tokens)
    raw = path.read_bytes()
    header = np.frombuffer(raw[: shards.HEADER_BYTES], dtype="<i4")
    assert list(header[:3]) == [20240520, 1, 5] and not header[3:].any()
    assert len(raw) == 1024 + 2 * 5
    assert np.array_equal(shards.open_shard(path), tokens)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda b: b[:100], "shorter than the 1024-byte header"),
        (lambda b: b"\x00" * 4 + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x02\x00\x00\x00" + b[8:], "unsupported version 2"),
        (lambda b: b[:-2], "header says 5 tokens"),
    ],
)
def test_bad_shards_fail_by_name(tmp_path: Path, corrupt, message: str) -> None:
    path = tmp_path / "s.bin"
    shards.write_shard(path, np.arange(5))
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(shards.ShardError, match=message):
        shards.read_header(path)


def test_tokens_must_fit_uint16(tmp_path: Path) -> None:
    with pytest.raises(shards.ShardError):
        shards.write_shard(tmp_path / "s.bin", np.array([70000]))


def test_shard_set_reads_across_boundaries(tmp_path: Path) -> None:
    parts = [np.arange(0, 10), np.arange(10, 13), np.arange(13, 30)]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"fineweb_train_{i:06d}.bin")
        shards.write_shard(paths[-1], part)
    s = shards.ShardSet(paths)
    assert s.size == 30
    assert np.array_equal(s.read(8, 10), np.arange(8, 18))
    assert np.array_equal(s.read(0, 30), np.arange(30))
    with pytest.raises(shards.ShardError, match="past the end"):
        s.read(25, 6)


def test_speedrun_stream_tiles_batches_and_keeps_the_probe_out(tmp_path: Path) -> None:
    fw = write_fineweb(tmp_path, [5000, 3000], 2000)
    spec = make_spec(
        "speedrun",
        "full",
        0,
        tmp_path,
        {"data_dir": str(tmp_path), "probe_tokens": 1000, "val_tokens": 1024},
    )
    stream = data.TrainStream(spec)
    everything = shards.ShardSet(shards.train_shards(fw)).read(0, 8000)
    a, b = stream.read(100), stream.read(100)
    assert np.array_equal(a, everything[:101]) and np.array_equal(b, everything[100:201])
    probe = stream.probe(1000)
    assert np.array_equal(probe, everything[-1001:])
    assert stream.limit == 8000 - 1001
    stream.position = stream.limit - 50
    assert stream.available(49) and not stream.available(50)
    val = data.validation_tokens(spec)
    assert np.array_equal(val, shards.open_shard(fw / shards.VAL_NAME)[:1025])
    assert data.protected_paths(spec) == [fw]


def test_tiny_stream_is_the_train_split(tmp_path: Path) -> None:
    from progressbench_environments.nanogpt import corpus

    spec = make_spec("tiny", "full", 0, tmp_path, {})
    stream = data.TrainStream(spec)
    reads = [stream.read(1000) for _ in range(3)]
    expected = corpus.split_tokens("train", 3001)
    for i, r in enumerate(reads):
        assert np.array_equal(r, expected[i * 1000 : i * 1000 + 1001])
    assert np.array_equal(stream.probe(500), corpus.split_tokens("probe", 501))
    assert data.protected_paths(spec) == []


def test_missing_shards_say_how_to_get_them(tmp_path: Path) -> None:
    spec = make_spec("speedrun", "full", 0, tmp_path, {"data_dir": str(tmp_path)})
    with pytest.raises(data.DataMissing, match="progressbench data nanogpt --variant speedrun"):
        data.TrainStream(spec)


class FakeHub:
    """Stands in for huggingface_hub.hf_hub_download: copies from a local directory."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[str] = []

    def __call__(self, repo_id: str, filename: str, repo_type: str, local_dir: str) -> str:
        assert repo_id == "kjj0/fineweb10B-gpt2" and repo_type == "dataset"
        self.calls.append(filename)
        target = Path(local_dir) / filename
        shutil.copyfile(self.root / filename, target)
        return str(target)


def test_fetch_data_downloads_through_huggingface_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    hub_dir = write_fineweb(tmp_path / "hub", [300, 300, 300], 500)
    hub = FakeHub(hub_dir)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    dest = tmp_path / "data"
    summary = NanoGPT().fetch_data("speedrun", dest, {"train_shards": 2})
    assert (
        "2 FineWeb10B train shards and the val shard" in summary
        and str(dest / "fineweb10B") in summary
    )
    assert hub.calls == [shards.VAL_NAME, "fineweb_train_000001.bin", "fineweb_train_000002.bin"]
    assert shards.read_header(dest / "fineweb10B" / "fineweb_train_000002.bin") == 300
    # Valid shards already there are not fetched again; a truncated one is.
    (dest / "fineweb10B" / "fineweb_train_000001.bin").write_bytes(b"oops")
    hub.calls.clear()
    NanoGPT().fetch_data("speedrun", dest, {"train_shards": 3})
    assert hub.calls == ["fineweb_train_000001.bin", "fineweb_train_000003.bin"]


def test_fetch_data_uses_the_data_dir_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    monkeypatch.setattr(
        huggingface_hub, "hf_hub_download", FakeHub(write_fineweb(tmp_path / "hub", [100], 100))
    )
    monkeypatch.setenv("PROGRESSBENCH_DATA", str(tmp_path / "pbdata"))
    NanoGPT().fetch_data("speedrun", None, {"train_shards": 1})
    assert (tmp_path / "pbdata" / "nanogpt" / "fineweb10B" / shards.VAL_NAME).exists()
    assert "nothing to fetch" in NanoGPT().fetch_data("tiny", None, {})


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    import huggingface_hub

    hub = FakeHub(write_fineweb(tmp_path / "hub", [3000, 3000], 2000))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    return hub


@pytest.mark.parametrize("named_by", ["dest", "data_dir option", "PROGRESSBENCH_DATA"])
def test_where_the_fetch_writes_is_where_every_reader_looks(
    named_by: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_hub: FakeHub
) -> None:
    """``progressbench data --dest D`` and the ``data_dir`` option name the directory holding
    fineweb10B/; $PROGRESSBENCH_DATA names the root holding nanogpt/fineweb10B. The run's
    availability check, the sandbox's readable paths, the harness's streams and the sentinel's
    protected paths all resolve the same directory the fetch wrote."""
    from progressbench_environments.nanogpt import env as env_module

    monkeypatch.setattr(env_module, "visible_gpus", lambda: 8)
    place = tmp_path / "place"
    fetch_options: dict[str, object] = {"train_shards": 2}
    dest: Path | None = None
    run_options: dict[str, object] = {"probe_tokens": 1000, "val_tokens": 1024}
    expected = place / "fineweb10B"
    if named_by == "dest":
        dest = place
        run_options["data_dir"] = str(place)
    elif named_by == "data_dir option":
        fetch_options["data_dir"] = run_options["data_dir"] = str(place)
    else:
        monkeypatch.setenv("PROGRESSBENCH_DATA", str(place))
        expected = place / "nanogpt" / "fineweb10B"
    nanogpt = NanoGPT()
    summary = nanogpt.fetch_data("speedrun", dest, fetch_options)
    assert str(expected) in summary and shards.read_header(expected / shards.VAL_NAME) == 2000
    assert nanogpt.unavailable("speedrun", run_options) is None
    assert nanogpt.readable_paths("speedrun", run_options) == [str(expected)]
    spec = make_spec("speedrun", "full", 0, tmp_path, run_options)
    assert data.TrainStream(spec).limit == 6000 - 1001
    assert data.validation_tokens(spec).size == 1025
    assert data.protected_paths(spec) == [expected]


def test_a_data_root_taken_for_the_data_dir_names_the_right_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_hub: FakeHub
) -> None:
    """Shards fetched with --dest R but looked for through PROGRESSBENCH_DATA=R (which reads
    R/nanogpt/fineweb10B), or the other way round, fail in one line naming where they are."""
    from progressbench_environments.nanogpt import env as env_module

    monkeypatch.setattr(env_module, "visible_gpus", lambda: 8)
    root = tmp_path / "root"
    NanoGPT().fetch_data("speedrun", root, {"train_shards": 1})
    monkeypatch.setenv("PROGRESSBENCH_DATA", str(root))
    why = NanoGPT().unavailable("speedrun")
    assert why is not None and "\n" not in why
    assert f"{root / 'nanogpt' / 'fineweb10B'}, but {root / 'fineweb10B'} holds some" in why
    assert f"--env-option data_dir={root}`" in why
    with pytest.raises(data.DataMissing, match="holds some"):
        data.TrainStream(make_spec("speedrun", "full", 0, tmp_path, {}))
    other = tmp_path / "other"
    NanoGPT().fetch_data("speedrun", other / "nanogpt", {"train_shards": 1})
    why = NanoGPT().unavailable("speedrun", {"data_dir": str(other)})
    assert why is not None and f"--env-option data_dir={other / 'nanogpt'}`" in why


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "hub unreachable"])
def test_an_offline_fetch_fails_in_one_line_saying_how_to_copy_the_shards(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No network: `progressbench data` exits non-zero with one line, no traceback, naming the
    file it could not fetch, the repository and the files to copy by hand."""
    import huggingface_hub
    from click.testing import CliRunner
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    from progressbench.cli import cli

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    if how == "HF_HUB_OFFLINE":  # the real download, in huggingface_hub's own offline mode
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    else:  # what it raises when the hub cannot be reached

        def unreachable(**_: object) -> str:
            raise LocalEntryNotFoundError(
                "An error happened while trying to locate the file on the Hub.\nPlease check "
                "your connection and try again."
            )

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    dest = tmp_path / "data"
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "nanogpt",
            "--variant",
            "speedrun",
            "--dest",
            str(dest),
            "--option",
            "train_shards=3",
        ],
    )
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    line = lines[0]
    assert line.startswith(f"error: could not download {shards.VAL_NAME} from the Hugging Face ")
    assert "kjj0/fineweb10B-gpt2" in line and str(dest / "fineweb10B") in line
    assert "fineweb_train_000001.bin .. fineweb_train_000003.bin" in line and "by hand" in line


def test_the_default_fetch_covers_the_references_training_tokens_with_margin(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """The default shard count holds the speedrun reference's training tokens (steps x batch,
    read from programs/speedrun.py) and the probe set with a quarter to spare."""
    import ast

    from progressbench_environments.nanogpt.config import SPEEDRUN
    from progressbench_environments.nanogpt.env import PROGRAMS

    constants = {
        node.targets[0].id: node.value.value
        for node in ast.parse((PROGRAMS / "speedrun.py").read_text()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    reference = constants["TRAIN_STEPS"] * constants["GLOBAL_BATCH_SEQS"] * constants["SEQ_LEN"]
    assert reference == 1_572_864_000
    held = shards.DEFAULT_TRAIN_SHARDS * shards.TOKENS_PER_SHARD
    assert held >= 1.25 * (reference + SPEEDRUN.probe_tokens)
    fake_hub.root = write_fineweb(tmp_path / "hub24", [10] * shards.DEFAULT_TRAIN_SHARDS, 10)
    NanoGPT().fetch_data("speedrun", tmp_path / "data", {})
    assert fake_hub.calls[-1] == f"fineweb_train_{shards.DEFAULT_TRAIN_SHARDS:06d}.bin"


def test_a_fetch_without_huggingface_hub_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from progressbench.errors import UserError

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(UserError, match=r"needs huggingface_hub \(pip install huggingface_hub\)"):
        NanoGPT().fetch_data("speedrun", tmp_path, {"train_shards": 1})
