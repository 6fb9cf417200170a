"""Bad input raises joule.JouleError with one line naming the argument or file, the line
the CLI prints for the same mistake (keyword names where the CLI says flags)."""

import pytest

import joule


def error(call):
    with pytest.raises(joule.JouleError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message, message
    return message


def as_keywords(cli_message):
    """The CLI's message with its flags spelled as keyword arguments."""
    for flag, keyword in [("--hw", "hw"), ("--batch", "batch"), ("--ifmap-density", "ifmap_density"),
                          ("--weight-density", "weight_density"), ("--bits", "bits")]:
        cli_message = cli_message.replace(flag, keyword)
    return cli_message


def test_joule_error_is_an_exception():
    assert issubclass(joule.JouleError, Exception)
    assert joule.JouleError.__module__ == "joule"


def test_unknown_model(cli_error):
    message = error(lambda: joule.energy("lenet6"))
    assert message == cli_error("energy", "lenet6")
    assert message.startswith('unknown model "lenet6"')
    assert error(lambda: joule.stats("lenet6")) == cli_error("stats", "lenet6")
    assert error(lambda: joule.compare(["alexnet", "lenet6"])) == cli_error("compare", "alexnet", "lenet6")


def test_missing_and_unsupported_files(cli_error, fixture_path):
    assert error(lambda: joule.energy("/nonexistent/m.onnx")) == cli_error("energy", "/nonexistent/m.onnx")
    assert error(lambda: joule.energy("model.h5")) == cli_error("energy", "model.h5")
    path = str(fixture_path("unsupported_op"))
    message = error(lambda: joule.energy(path))
    assert message == cli_error("energy", path) and message.startswith(path)
    raw = fixture_path("unsupported_op").read_bytes()
    assert error(lambda: joule.energy(raw)) == 'model "onnx" (ONNX bytes)' + message[len(path):]


def test_bad_onnx_bytes():
    message = error(lambda: joule.energy(b"not an onnx model"))
    assert message.startswith('model "onnx" (ONNX bytes): not a valid ONNX model'), message


def test_unknown_hardware(cli_error):
    message = error(lambda: joule.energy("alexnet", hw="eyeriss2"))
    assert message == as_keywords(cli_error("energy", "alexnet", "--hw", "eyeriss2"))
    assert message.startswith('hw eyeriss2: unknown hardware preset "eyeriss2"'), message
    assert error(lambda: joule.hardware("eyeriss2")) == message
    assert error(lambda: joule.compare(["alexnet", "lenet5"], hw=["eyeriss", "eyeriss2"])) == message


def test_bad_yaml_names_the_file(tmp_path, cli_error):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: broken\narray: [\n")
    message = error(lambda: joule.hardware(spec))
    assert message.startswith(f"hw {spec}: {spec}"), message
    assert error(lambda: joule.energy("lenet5", hw=str(spec))) == as_keywords(
        cli_error("energy", "lenet5", "--hw", str(spec))
    )
    missing = tmp_path / "missing.yaml"
    assert error(lambda: joule.hardware(missing)) == as_keywords(
        cli_error("energy", "lenet5", "--hw", str(missing))
    )


@pytest.mark.parametrize("batch", [0, 1 << 21])
def test_batch_out_of_range(batch, cli_error):
    message = error(lambda: joule.energy("alexnet", batch=batch))
    assert message == as_keywords(cli_error("energy", "alexnet", "--batch", str(batch)))
    assert message == f"batch: {batch} is out of range (1 to 1048576)"
    assert error(lambda: joule.dataflows("alexnet", batch=batch)) == message
    assert error(lambda: joule.compare(["alexnet", "lenet5"], batch=batch)) == message


def test_negative_batch():
    assert error(lambda: joule.energy("alexnet", batch=-1)) == "batch: -1 is out of range (1 to 1048576)"


@pytest.mark.parametrize(
    "keyword, value, flag",
    [("ifmap_density", 1.5, "--ifmap-density"), ("weight_density", -0.1, "--weight-density"),
     ("bits", 0, "--bits"), ("bits", 65, "--bits")],
)
def test_settings_out_of_range(keyword, value, flag, cli_error):
    message = error(lambda: joule.energy("alexnet", **{keyword: value}))
    assert message.startswith(f"{keyword}: "), message
    assert message == as_keywords(cli_error("energy", "alexnet", f"{flag}={value}"))


def test_unknown_dataflow_and_objective():
    assert error(lambda: joule.energy("alexnet", dataflow="xs")).startswith('dataflow: unknown dataflow "xs"')
    assert error(lambda: joule.energy("alexnet", objective="speed")).startswith('objective: unknown objective "speed"')
    assert error(lambda: joule.compare(["alexnet", "lenet5"], dataflow="xs")).startswith("dataflow: ")


def test_dataflows_needs_a_digital_machine(cli_error):
    message = error(lambda: joule.dataflows("alexnet", hw="pim-128"))
    assert message == as_keywords(cli_error("dataflows", "alexnet", "--hw", "pim-128"))


def test_bad_input_shape(fixture_path):
    assert error(lambda: joule.stats("alexnet", input_shape="1,2")).startswith("input_shape: ")
    assert error(lambda: joule.stats("alexnet", input_shape=(1, 2.5, 3, 4))).startswith("input_shape: ")
    symbolic = str(fixture_path("symbolic"))
    assert symbolic in error(lambda: joule.stats(symbolic))  # no shape for a symbolic input


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: joule.energy(3), "model"),
        (lambda: joule.energy(None), "model"),
        (lambda: joule.energy("alexnet", hw=5), "hw"),
        (lambda: joule.energy("alexnet", batch="1"), "batch"),
        (lambda: joule.energy("alexnet", batch=1.0), "batch"),
        (lambda: joule.energy("alexnet", batch=True), "batch"),
        (lambda: joule.energy("alexnet", dataflow=None), "dataflow"),
        (lambda: joule.energy("alexnet", ifmap_density="half"), "ifmap_density"),
        (lambda: joule.energy("alexnet", bits=8.0), "bits"),
        (lambda: joule.stats("alexnet", input_shape=224), "input_shape"),
        (lambda: joule.compare("alexnet"), "models"),
        (lambda: joule.compare([]), "models"),
        (lambda: joule.compare(["alexnet", 7]), "models[1]"),
        (lambda: joule.compare(["alexnet"], hw=3), "hw"),
        (lambda: joule.hardware(None), "hw"),
    ],
)
def test_wrong_types(call, argument):
    assert error(call).startswith(f"{argument}: ")
