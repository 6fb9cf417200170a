//! `joule energy --hw pim-*` and `joule compare` end to end.

mod common;

use common::run;

#[test]
fn energy_on_pim_uses_the_shared_report_with_components() {
    let (code, out, err) = run(&["energy", "lenet300", "--hw", "pim-128", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["hardware"], "pim-128");
    assert_eq!(r["unit"], "pJ");
    // LeNet-300-100's first FC, 784 -> 300 with 16-bit weights on 2-bit cells:
    // 7 row tiles x 19 column tiles (2400 / 128 = 18.75) = 133 arrays.
    let fc1 = &r["layers"][0];
    assert_eq!(fc1["arrays"], 133);
    assert_eq!(fc1["dac_conversions"], 784.0 * 19.0 * 16.0);
    assert_eq!(fc1["adc_conversions"], 7.0 * 2400.0 * 16.0);
    let total = r["total"]["energy"]["total"].as_f64().unwrap();
    assert!((r["total"]["components"]["total"].as_f64().unwrap() - total).abs() < 1e-6 * total);
}

#[test]
fn compare_puts_models_side_by_side_on_both_kinds_of_machine() {
    let (code, out, err) = run(&[
        "compare", "lenet300", "lenet5", "--hw", "eyeriss", "--hw", "pim-256", "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["hardware"], "eyeriss");
    assert_eq!(rows[0]["energy_ratio"], 1.0);
    assert_eq!(rows[3]["hardware"], "pim-256");
    assert_eq!(rows[3]["model"], "lenet5");
    assert_eq!(rows[3]["unit"], "pJ");
    assert!(rows[3]["weight_programming"].as_f64().unwrap() > 0.0);
    assert!(rows[3]["latency_us"].as_f64().unwrap() > 0.0);
    let (code, out, _) = run(&["compare", "lenet300", "lenet5", "--hw", "pim-128"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("ADC"), "{out}");
}

#[test]
fn bad_pim_input_is_one_line_exit_2() {
    let dir = std::env::temp_dir().join(format!("joule-pim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("bad.yaml");
    let good = joule_energy::pim::spec::PRESETS[0].1;
    std::fs::write(&spec, good.replace("cell_bits: 2", "cell_bits: 0")).unwrap();
    let spec = spec.display().to_string();
    for args in [
        vec!["energy", "lenet300", "--hw", spec.as_str()],
        vec!["compare", "lenet300", "lenet5", "--hw", spec.as_str()],
        vec!["energy", "lenet300", "--hw", "pim-100"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!err.contains("panicked"));
    }
    let (_, _, err) = run(&["energy", "lenet300", "--hw", &spec]);
    assert!(
        err.contains("bad.yaml") && err.contains("array.cell_bits"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
