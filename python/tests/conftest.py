"""Shared fixtures: the `joule` binary (the CLI the package must agree with) and the ONNX
fixtures made by scripts/make-onnx-fixtures.py."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "onnx"


def _binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("JOULE_BIN", ROOT / "target" / "release" / "joule"))
    if not path.is_file():
        raise RuntimeError(
            f"{path}: no joule binary to compare with (build it: cargo build --release -p joule-cli,"
            " or set JOULE_BIN); scripts/python-test.sh builds it"
        )
    return path


@pytest.fixture(scope="session")
def cli():
    """`cli("energy", "alexnet", "--json")` -> the parsed JSON the command prints."""
    binary = _binary()

    def run(*args):
        out = subprocess.run([binary, *args], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    return run


@pytest.fixture(scope="session")
def cli_error():
    """`cli_error("energy", "nomodel")` -> the one-line error the command prints, without
    the `joule: error: ` prefix."""
    binary = _binary()

    def run(*args):
        out = subprocess.run([binary, *args], capture_output=True, text=True)
        assert out.returncode == 2, out
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("joule: error: "), out.stderr
        return lines[0][len("joule: error: "):]

    return run


@pytest.fixture(scope="session")
def fixture_path():
    """`fixture_path("tiny_cnn")` -> the path of tests/fixtures/onnx/tiny_cnn.onnx."""

    def path(name):
        p = FIXTURES / f"{name}.onnx"
        if not p.is_file():
            raise RuntimeError(
                f"{p} is missing: run .venv/bin/python scripts/make-onnx-fixtures.py tests/fixtures/onnx"
            )
        return p

    return path
