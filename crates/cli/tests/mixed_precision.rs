//! `joule mixed-precision`: bad settings are one-line errors naming the flag (exit 2), and a
//! search end to end on real MNIST (scripts/fetch-data.sh) keeps every family member within
//! the accuracy drop on its holdout, lowers energy at every step, writes its run directory,
//! refuses to overwrite it, and resumes a finished run to the same summary.

mod common;

use common::{fails, read_json, succeeds};

#[test]
fn bad_settings_are_one_line_errors() {
    for (flag, value, says) in [
        ("--ladder", "8,x", "\"x\" is not a number of bits"),
        ("--ladder", "8,8", "must descend strictly"),
        ("--ladder", "8,1", "2 to 16"),
        ("--uniform", "33", "2 to 16"),
        ("--energy-budget", "2x", "between 0 and 1"),
        ("--first-last", "4", "8 or same"),
        ("--max-drop", "-1", "points >= 0"),
    ] {
        let e = fails(&[
            "mixed-precision",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--out",
            "/nonexistent/x",
            flag,
            value,
        ]);
        assert!(e.contains(flag) && e.contains(says), "{flag} {value}: {e}");
        assert!(!e.trim_end().contains('\n'), "{e}");
    }
}

#[test]
fn searches_a_trained_model_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ckpt = path("lenet5.safetensors");
    succeeds(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        "mnist",
        "--epochs",
        "1",
        "--seed",
        "2",
        "--holdout",
        "300",
        "--out",
        &ckpt,
    ]);
    let out = path("m");
    let args = [
        "mixed-precision",
        "--model",
        &ckpt,
        "--data",
        "mnist",
        "--holdout",
        "300",
        "--seed",
        "2",
        "--ladder",
        "8,4,2",
        "--uniform",
        "2,4,8",
        "--max-drop",
        "1",
        "--calibration-images",
        "128",
        "--hw",
        "eyeriss",
        "--out",
        &out,
    ];
    let text = succeeds(&args);
    assert!(text.contains("chosen:"), "{text}");
    let s = read_json(&dir.path().join("m/summary.json"));
    let floor = s["float"]["holdout_accuracy"].as_f64().unwrap() - 0.01;
    let family = s["family"].as_array().unwrap();
    assert!(family.len() > 1, "the search kept nothing: {text}");
    let energies: Vec<f64> = family
        .iter()
        .map(|m| m["energy"].as_f64().unwrap())
        .collect();
    assert!(energies.windows(2).all(|w| w[1] < w[0]), "{energies:?}");
    for m in &family[1..] {
        assert!(m["holdout_accuracy"].as_f64().unwrap() >= floor - 1e-12);
    }
    // The start is uniform 8/8 (first and last layers at 8 too): its energy is the 8/8
    // point's, computed independently by the uniform sweep.
    let uniform = s["uniform"].as_array().unwrap();
    let u88 = uniform.iter().find(|p| p["label"] == "8/8").unwrap();
    assert_eq!(u88["energy"], family[0]["energy"]);
    assert_eq!(u88["holdout_accuracy"], family[0]["holdout_accuracy"]);
    let ratio = s["energy_ratio_vs_start"].as_f64().unwrap();
    assert!(ratio > 1.0, "{ratio}");
    for f in [
        "state.json",
        "mixed.safetensors",
        "mixed.onnx",
        "accuracy_vs_energy.svg",
        "holdout_vs_energy.svg",
    ] {
        assert!(dir.path().join("m").join(f).is_file(), "{f}");
    }
    let e = fails(&args);
    assert!(e.contains("already holds a run"), "{e}");
    let summary = std::fs::read(dir.path().join("m/summary.json")).unwrap();
    let mut again = args.to_vec();
    again.push("--resume");
    succeeds(&again);
    assert_eq!(
        std::fs::read(dir.path().join("m/summary.json")).unwrap(),
        summary
    );
    // The holdout is recorded (split.json): a resume scoring on another split is refused,
    // naming the flag with both values.
    let mut other = again.clone();
    let at = other.iter().position(|a| *a == "--holdout").unwrap();
    other[at + 1] = "250";
    let e = fails(&other);
    assert!(
        e.contains("--holdout: cannot resume the run in")
            && e.contains("started with 300, not 250"),
        "{e}"
    );
}
