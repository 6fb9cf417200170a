"""The estimates from Python against the CLI (the same library call, printed as JSON) and
against figures known independently (AlexNet's MACs, Eyeriss's PE array)."""

import math
import pathlib
import sys

import pytest

import joule

# AlexNet's multiply-accumulates for one 227x227 image (Chen et al., ISSCC 2016: 724M).
ALEXNET_MACS = 724_406_816
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_energy_total_equals_the_cli_exactly(cli):
    report = joule.energy("alexnet", hw="eyeriss")
    expected = cli("energy", "alexnet", "--hw", "eyeriss", "--json")
    assert report.total == expected["total"]["energy"]["total"]  # exact, not approx
    assert report.to_dict() == expected


def test_energy_options_reach_the_library_as_the_flags_do(cli):
    report = joule.energy(
        "alexnet", hw="eyeriss", batch=4, dataflow="ws", objective="edp",
        ifmap_density=0.5, weight_density=0.75, bits=8,
    )
    expected = cli(
        "energy", "alexnet", "--hw", "eyeriss", "--batch", "4", "--dataflow", "ws",
        "--objective", "edp", "--ifmap-density", "0.5", "--weight-density", "0.75",
        "--bits", "8", "--json",
    )
    assert report.to_dict() == expected
    assert (report.batch, report.dataflow, report.objective) == (4, "ws", "edp")
    assert report.total != joule.energy("alexnet", hw="eyeriss", batch=4, dataflow="ws").total


def test_energy_report_fields():
    report = joule.energy("alexnet", hw="eyeriss")
    assert (report.model, report.hardware, report.unit, report.dataflow) == (
        "alexnet", "eyeriss", "mac", "rs"
    )
    assert report.macs == ALEXNET_MACS
    assert [l.name for l in report.layers] == [f"conv{i}" for i in range(1, 6)] + [
        "fc1", "fc2", "fc3"
    ]
    assert [l.class_ for l in report.layers] == ["conv"] * 5 + ["fc"] * 3
    assert sum(l.macs for l in report.layers) == ALEXNET_MACS
    assert math.isclose(sum(l.total for l in report.layers), report.total, rel_tol=1e-12)
    assert math.isclose(sum(l.cycles for l in report.layers), report.cycles, rel_tol=1e-12)
    assert report.latency_us == report.cycles / report.clock_mhz
    assert 0 < report.utilization <= 1
    for layer in report.layers:
        e, t = layer.energy, layer.energy_by_type
        assert e.total == layer.total
        assert math.isclose(e.mac + e.rf + e.array + e.buffer + e.dram, e.total, rel_tol=1e-12)
        assert math.isclose(t.ifmap + t.filter + t.psum + t.compute, e.total, rel_tol=1e-12)
        # On a MAC-normalised machine a MAC costs one unit.
        assert e.mac == layer.macs
        assert 0 < layer.utilization <= 1 and layer.dram_bytes > 0 and layer.mapping
        assert layer.to_dict()["energy"] == e.to_dict()
    assert len(report) == 8
    assert repr(report).startswith('EnergyReport(model="alexnet", hardware="eyeriss"')
    assert "conv1" in repr(report.layers[0])


def test_batch_scales_macs():
    one = joule.energy("lenet5", hw="eyeriss")
    four = joule.energy("lenet5", hw="eyeriss", batch=4)
    assert four.macs == 4 * one.macs


def test_pim_machine_reports_in_picojoules(cli):
    report = joule.energy("lenet5", hw="pim-128")
    assert report.unit == "pJ"
    assert report.to_dict() == cli("energy", "lenet5", "--hw", "pim-128", "--json")


def test_to_pandas():
    report = joule.energy("alexnet", hw="eyeriss")
    frame = report.to_pandas()
    assert list(frame["layer"]) == [l.name for l in report.layers]
    assert list(frame.columns) == [
        "layer", "class", "macs", "total", "mac", "rf", "array", "buffer", "dram",
        "ifmap", "filter", "psum", "compute", "cycles", "utilization", "dram_bytes",
    ]
    assert frame["macs"].sum() == ALEXNET_MACS
    assert math.isclose(frame["total"].sum(), report.total, rel_tol=1e-12)
    assert len(joule.stats("lenet5").to_pandas()) == len(joule.stats("lenet5").layers)
    assert len(joule.compare(["lenet5", "lenet300"]).to_pandas()) == 4


def test_to_pandas_without_pandas_says_how_to_get_it(monkeypatch):
    report = joule.energy("lenet5")
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    with pytest.raises(ImportError, match=r"to_pandas\(\) needs pandas.*pip install pandas"):
        report.to_pandas()


def test_stats_equals_the_cli(cli):
    stats = joule.stats("alexnet")
    assert stats.to_dict() == cli("stats", "alexnet", "--json")
    assert stats.macs == ALEXNET_MACS
    assert stats.input_shape == (1, 3, 227, 227)
    assert sum(l.weights for l in stats.layers) == stats.weights
    conv1 = stats.layers[0]
    # 96 filters of 3x11x11 over a 55x55 output.
    assert (conv1.name, conv1.class_, conv1.weights) == ("conv1", "conv", 96 * 3 * 11 * 11)
    assert conv1.macs == 96 * 3 * 11 * 11 * 55 * 55
    assert conv1.output_shape == (1, 96, 55, 55)
    assert conv1.to_dict() == stats.to_dict()["layers"][0]


def test_stats_input_shape(cli, fixture_path):
    path = str(fixture_path("symbolic"))
    for shape in [(2, 3, 32, 32), [2, 3, 32, 32], "2,3,32,32"]:
        stats = joule.stats(path, input_shape=shape)
        assert stats.input_shape == (2, 3, 32, 32)
        assert stats.to_dict() == cli("stats", path, "--input-shape", "2,3,32,32", "--json")


def test_compare_equals_the_cli(cli):
    comparison = joule.compare(["alexnet", "lenet5"])
    expected = cli("compare", "alexnet", "lenet5", "--json")  # default --hw eyeriss,pim-128
    assert comparison.to_dict() == {"entries": expected}
    assert [(e.hardware, e.model) for e in comparison] == [
        ("eyeriss", "alexnet"), ("eyeriss", "lenet5"), ("pim-128", "alexnet"), ("pim-128", "lenet5"),
    ]
    first, second = comparison[0], comparison[1]
    assert first.energy_ratio == 1.0 and first.latency_ratio == 1.0
    assert second.energy_ratio == second.energy / first.energy
    assert first.energy == joule.energy("alexnet", hw="eyeriss").total
    assert math.isclose(sum(share for _, share in first.breakdown), 1.0, rel_tol=1e-12)
    assert comparison[-1].to_dict() == expected[-1]
    assert len(comparison) == 4
    one = joule.compare(["lenet5", "lenet300"], hw="pim-256", dataflow="ws", batch=2)
    assert one.to_dict() == {
        "entries": cli("compare", "lenet5", "lenet300", "--hw", "pim-256", "--dataflow", "ws",
                       "--batch", "2", "--json")
    }


def test_dataflows_equals_the_cli(cli):
    result = joule.dataflows("alexnet", hw="isca16", batch=4)
    expected = cli("dataflows", "alexnet", "--hw", "isca16", "--batch", "4", "--json")
    assert result.to_dict() == {"reports": expected}
    assert list(result.energy) == [r["dataflow"] for r in expected]
    assert result.energy == {r.dataflow: r.total for r in result.reports}
    assert result.best == min(result.energy, key=result.energy.get)
    # The row-stationary dataflow is the most efficient on AlexNet (Chen et al., ISCA 2016).
    assert result.best == "rs"


def test_hardware_presets_and_yaml(tmp_path, cli):
    eyeriss = joule.hardware("eyeriss")
    # The Eyeriss chip: 168 PEs in 12 rows of 14 (ISSCC 2016).
    assert (eyeriss.name, eyeriss.kind, eyeriss.array) == ("eyeriss", "digital", (12, 14))
    assert eyeriss.description and eyeriss.unit == "mac"
    pim = joule.hardware("pim-128")
    assert (pim.kind, pim.array, pim.unit) == ("pim", (128, 128), "pJ")
    names = [h.name for h in joule.presets()]
    assert names[:1] == ["eyeriss"] and "pim-1024" in names
    assert [h.kind for h in joule.presets()] == sorted(
        (h.kind for h in joule.presets()), key=["digital", "pim"].index
    )
    # A YAML file: the preset's own text under another name.
    text = (ROOT / "crates" / "energy" / "presets" / "eyeriss.yaml").read_text()
    spec = tmp_path / "mine.yaml"
    spec.write_text(text)
    from_file = joule.hardware(spec)
    assert from_file.to_dict() == eyeriss.to_dict()
    assert joule.energy("lenet5", hw=spec).total == joule.energy("lenet5", hw="eyeriss").total


def test_zoo_equals_the_cli(cli):
    zoo = joule.zoo()
    assert [m.to_dict() for m in zoo] == cli("zoo", "--json")
    by_name = {m.name: m for m in zoo}
    assert by_name["alexnet"].macs == ALEXNET_MACS
    assert {"lenet5", "alexnet", "resnet50"} <= set(by_name)
    assert by_name["alexnet"].input_shape == (1, 3, 227, 227)


def test_the_package_ships_its_types():
    package = pathlib.Path(joule.__file__).parent
    assert (package / "py.typed").is_file() and (package / "_joule.pyi").is_file()
    assert package != ROOT / "python" / "joule", "the tests must run against the installed package"
    stub = (package / "_joule.pyi").read_text()
    source = (package / "__init__.py").read_text()
    for name in joule.__all__:
        # The extension's names are typed by the stub; the pure-Python ones in the source.
        typed = f"class {name}" in stub or f"def {name}(" in stub
        typed = typed or f"class {name}:" in source or f"def {name}(" in source
        assert typed and getattr(joule, name).__doc__, name
