"""A torch.nn.Module exported in memory. Needs torch (scripts/make-torch-fixtures.sh, which
scripts/test.sh runs first, installs it into .venv); without it these tests fail, not skip."""

import pytest

import joule

pytestmark = pytest.mark.torch


def test_module_equals_its_onnx_export():
    import io

    import torch

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8 * 16 * 16, 10)

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))

    module = Small().eval()
    example = torch.zeros(1, 3, 16, 16)
    report = joule.energy(module, example_input=example)
    assert report.model == "Small"
    assert report.macs == 8 * 3 * 9 * 16 * 16 + 8 * 16 * 16 * 10
    buffer = io.BytesIO()
    torch.onnx.export(module, (example,), buffer, dynamo=False)
    expected = joule.energy(buffer.getvalue()).to_dict()
    got = report.to_dict()
    got.pop("model"), expected.pop("model")
    assert got == expected
    with pytest.raises(joule.JouleError, match="^example_input: "):
        joule.energy(module)
