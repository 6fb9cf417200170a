//! `joule quantize`: bad bit-widths are one-line errors naming the flag (exit 2, before any
//! model or data is read), and a QAT run end to end on real MNIST (scripts/fetch-data.sh)
//! writes its run directory, reports energy at the quantized widths, and refuses to
//! overwrite itself.

mod common;

use common::{fails, read_json, succeeds};

#[test]
fn bad_bit_widths_are_one_line_errors() {
    for flag in ["--weight-bits", "--activation-bits"] {
        for value in ["0", "33", "x", "1", "17", "-4"] {
            let e = fails(&[
                "quantize",
                "--model",
                "lenet5",
                "--data",
                "mnist",
                "--out",
                "/nonexistent/x",
                flag,
                value,
            ]);
            assert!(e.starts_with(&format!("joule: error: {flag}: ")), "{e}");
            assert!(e.contains("2 to 16"), "{e}");
        }
    }
    for (flag, value, says) in [
        (
            "--layer-bits",
            "conv1=0/8",
            "conv1 weight: must be 2 to 16 bits, got 0",
        ),
        ("--layer-bits", "conv1", "expected layer=W/A"),
        (
            "--scheme",
            "octal",
            "uniform, power-of-two, ternary or binary",
        ),
        ("--calibration", "kl", "mse or minmax"),
        ("--first-last", "4", "8 or same"),
    ] {
        let e = fails(&[
            "quantize",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--out",
            "/nonexistent/x",
            flag,
            value,
        ]);
        assert!(e.contains(flag) && e.contains(says), "{e}");
    }
}

#[test]
fn quantizes_a_trained_model_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ckpt = path("lenet5.safetensors");
    succeeds(&[
        "train", "--model", "lenet5", "--data", "mnist", "--epochs", "1", "--seed", "2", "--out",
        &ckpt,
    ]);
    let out = path("q");
    let args = [
        "quantize",
        "--model",
        &ckpt,
        "--data",
        "mnist",
        "--weight-bits",
        "4",
        "--activation-bits",
        "4",
        "--layer-bits",
        "fc1=2/",
        "--qat-epochs",
        "1",
        "--calibration-images",
        "256",
        "--hw",
        "eyeriss",
        "--out",
        &out,
    ];
    let text = succeeds(&args);
    assert!(text.contains("energy on eyeriss"), "{text}");
    let s = read_json(&dir.path().join("q/summary.json"));
    let plan = s["plan"].as_array().unwrap();
    let widths: Vec<(u64, u64)> = plan
        .iter()
        .map(|p| {
            (
                p["weight_bits"].as_u64().unwrap(),
                p["activation_bits"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(widths, [(8, 8), (4, 4), (2, 4), (4, 4), (8, 8)]);
    // Narrower data cost less on Eyeriss; MAC energy at the first layer's 8/8 is 0.29575.
    let ratio = s["energy"]["ratio"].as_f64().unwrap();
    assert!(ratio > 1.5, "{ratio}");
    let float = s["float_accuracy"].as_f64().unwrap();
    let final_accuracy = s["accuracy"].as_f64().unwrap();
    assert!(final_accuracy > float - 0.03, "{float} -> {final_accuracy}");
    assert_eq!(s["epochs"].as_array().unwrap().len(), 1);
    for f in [
        "quantized.safetensors",
        "quantized.onnx",
        "quant.json",
        "energy.svg",
    ] {
        assert!(dir.path().join("q").join(f).is_file(), "{f}");
    }
    // A second run refuses the folder; --resume finds the run finished and agrees with it.
    let e = fails(&args);
    assert!(e.contains("already holds a run"), "{e}");
    let mut resume = args.to_vec();
    resume.push("--resume");
    succeeds(&resume);
    let again = read_json(&dir.path().join("q/summary.json"));
    assert_eq!(again, s);
}
