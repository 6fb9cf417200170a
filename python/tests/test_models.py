"""Every kind of model argument gives the same result as the path it came from."""

import os
import pathlib
import subprocess

import onnx
import pytest

import joule
from conftest import _binary


def same_estimate(a, b):
    """Two reports of one network: the same layers and numbers (model names differ)."""
    da, db = a.to_dict(), b.to_dict()
    da.pop("model"), db.pop("model")
    assert da == db


@pytest.mark.parametrize("fixture", ["tiny_cnn", "branches", "mlp_matmul"])
def test_bytes_and_model_proto_equal_the_path(fixture, fixture_path):
    path = fixture_path(fixture)
    by_path = joule.energy(str(path), hw="eyeriss")
    assert by_path.model == str(path)
    raw = path.read_bytes()
    proto = onnx.load(str(path))
    for model in [raw, bytearray(raw), memoryview(raw), proto, pathlib.Path(path)]:
        same_estimate(joule.energy(model, hw="eyeriss"), by_path)
    assert joule.energy(proto).model == (proto.graph.name or "onnx")
    assert joule.energy(raw).model == "onnx"
    stats_path, stats_proto = joule.stats(path).to_dict(), joule.stats(proto).to_dict()
    assert stats_proto == stats_path  # the graph's own name in both
    comparison = joule.compare([raw, path], hw="eyeriss")
    assert comparison[0].energy == comparison[1].energy == by_path.total
    same_estimate(joule.dataflows(proto, batch=2).reports[0], joule.dataflows(path, batch=2).reports[0])


def test_pathlike_is_a_path(fixture_path):
    class Where(os.PathLike):
        def __init__(self, p):
            self.p = p

        def __fspath__(self):
            return str(self.p)

    path = fixture_path("tiny_cnn")
    assert joule.energy(Where(path)).to_dict() == joule.energy(str(path)).to_dict()


def test_an_onnx_file_the_cli_exported(tmp_path, cli):
    """A model with weights (the CLI's export of LeNet-5 with initialised weights) as a
    path, as bytes and as a ModelProto."""
    out = tmp_path / "lenet5.onnx"
    subprocess.run(
        [_binary(), "export", "--model", "lenet5", "--out", str(out), "--init-seed", "1"],
        check=True, capture_output=True,
    )
    assert joule.energy(out).to_dict() == cli("energy", str(out), "--json")
    same_estimate(joule.energy(out.read_bytes()), joule.energy(out))
    same_estimate(joule.energy(onnx.load(str(out))), joule.energy(out))
    assert joule.stats(out).macs == joule.stats("lenet5").macs
