//! The bad-input table (issue #19, docs/reliability.md): every hostile input tried against
//! joule, run through the real binary. Each case must end with exit code 2, exactly one line
//! on stderr that names the file and the field, node or flag at fault, no panic, and within
//! a time bound (the cases that used to hang or allocate gigabytes are the reason for it).
//!
//! `cargo test --release -p joule-cli --test bad_input` (needs `data/`, from
//! scripts/fetch-data.sh, and tests/fixtures/onnx, from scripts/test.sh).

mod common;

use common::joule_process;
use joule_onnx::proto::ModelProto;
use prost::Message;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Time bound of a case that only parses and checks its inputs.
const QUICK: Duration = Duration::from_secs(10);
/// Time bound of a case that loads data or trains a little first.
const SLOW: Duration = Duration::from_secs(60);

/// Runs `joule args` and checks the contract of a refused input: exit 2, one line on
/// stderr containing every one of `names`, no panic, within `bound`. Returns the line.
#[track_caller]
fn refused_within(bound: Duration, args: &[&str], names: &[&str]) -> String {
    let started = Instant::now();
    let out = joule_process()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for name in names {
        assert!(err.contains(name), "{args:?}: {name:?} not named in {err}");
    }
    assert!(elapsed < bound, "{args:?}: took {elapsed:?}: {err}");
    err
}

#[track_caller]
fn refused(args: &[&str], names: &[&str]) -> String {
    refused_within(QUICK, args, names)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx")
        .join(name)
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// A folder that lives as long as the test process (shared fixtures).
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// A LeNet-300-100 trained for one epoch on MNIST: the good checkpoint the edits start from.
fn checkpoint() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = scratch().join("lenet300.safetensors");
        let out = joule_process()
            .args([
                "train", "--model", "lenet300", "--data", "mnist", "--epochs", "1",
            ])
            .args(["--out", s(&path)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
}

/// A safetensors file split into its header JSON and its data.
fn split(bytes: &[u8]) -> (Json, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

fn join(header: &Json, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// The trained checkpoint with its header and data edited, written under `name`.
fn edited_checkpoint(name: &str, edit: impl FnOnce(&mut Json, &mut Vec<u8>)) -> PathBuf {
    let (mut header, mut data) = split(&std::fs::read(checkpoint()).unwrap());
    edit(&mut header, &mut data);
    let path = scratch().join(name);
    std::fs::write(&path, join(&header, &data)).unwrap();
    path
}

/// The checkpoint's graph JSON edited by `edit`.
fn edited_graph(name: &str, edit: impl FnOnce(&mut Json)) -> PathBuf {
    edited_checkpoint(name, |header, _| {
        let meta = &mut header["__metadata__"]["joule.graph"];
        let mut graph: Json = serde_json::from_str(meta.as_str().unwrap()).unwrap();
        edit(&mut graph);
        *meta = Json::String(graph.to_string());
    })
}

/// An ONNX fixture edited by `edit`, written under `name`.
fn edited_onnx(name: &str, edit: impl FnOnce(&mut ModelProto)) -> PathBuf {
    let bytes = std::fs::read(fixture("tiny_cnn.onnx")).unwrap();
    let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
    edit(&mut model);
    let path = scratch().join(name);
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

/// The isca16 preset with `from` replaced by `to`, written under `name`.
fn edited_spec(name: &str, from: &str, to: &str) -> PathBuf {
    let preset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../energy/presets/isca16.yaml");
    let text = std::fs::read_to_string(preset).unwrap();
    assert!(text.contains(from), "{from}");
    let path = scratch().join(name);
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

/// A data folder whose `mnist` training split is the given IDX files (the test split is
/// MNIST's own).
fn data_with(name: &str, images: &[u8], labels: &[u8], gz: bool) -> PathBuf {
    let root = scratch().join(name);
    let dir = root.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let suffix = if gz { ".gz" } else { "" };
    std::fs::write(dir.join(format!("train-images-idx3-ubyte{suffix}")), images).unwrap();
    std::fs::write(dir.join(format!("train-labels-idx1-ubyte{suffix}")), labels).unwrap();
    for file in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        std::fs::copy(data_dir().join("mnist").join(file), dir.join(file)).unwrap();
    }
    root
}

// ---- Limits and checked arithmetic -------------------------------------------------------

#[test]
fn input_of_2_pow_32_by_2_pow_32_is_refused_not_0_macs() {
    refused(
        &[
            "stats",
            "lenet5",
            "--input-shape",
            "1,1,4294967296,4294967296",
        ],
        &["lenet5", "the input", "4294967296", "maximum"],
    );
}

#[test]
fn input_of_2_pow_40_values_is_refused_not_wrapped() {
    refused(
        &["stats", "alexnet", "--input-shape", "1,1,1048576,1048576"],
        &["alexnet", "the input", "1099511627776", "maximum"],
    );
    // The input fits at this batch, AlexNet's conv1 output (96x55x55 a sample) does not.
    refused(
        &["energy", "alexnet", "--batch", "300000", "--hw", "isca16"],
        &["alexnet", "node \"conv1\"", "maximum"],
    );
}

#[test]
fn onnx_pads_of_2_pow_62_are_refused() {
    let path = edited_onnx("pads.onnx", |m| {
        let graph = m.graph.as_mut().unwrap();
        let conv = graph.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
        let pads = conv
            .attribute
            .iter_mut()
            .find(|a| a.name == "pads")
            .unwrap();
        pads.ints = vec![1 << 62; 4];
    });
    refused(
        &["stats", s(&path)],
        &["pads.onnx", "pads of 4611686018427387904", "maximum"],
    );
}

#[test]
fn onnx_tensor_declaring_2_pow_64_values_is_refused() {
    let path = edited_onnx("dims.onnx", |m| {
        let t = &mut m.graph.as_mut().unwrap().initializer[0];
        t.dims = vec![1 << 32, 1 << 32];
        t.raw_data.clear();
        t.float_data.clear();
    });
    refused(&["stats", s(&path)], &["dims.onnx", "tensor", "dims"]);
}

#[test]
fn checkpoint_graph_with_huge_attributes_is_refused() {
    let path = edited_graph("huge-fc.safetensors", |g| {
        g["nodes"][1]["op"]["outputs"] = Json::from(1u64 << 40);
    });
    refused(
        &["stats", s(&path)],
        &["huge-fc.safetensors", "joule.graph", "outputs"],
    );
}

#[test]
fn hardware_rows_of_10_pow_12_are_refused_quickly_not_a_hang() {
    let path = edited_spec("rows.yaml", "rows: 16", "rows: 1000000000000");
    refused(
        &["energy", "lenet5", "--hw", s(&path)],
        &["rows.yaml", "array.rows", "4096"],
    );
}

#[test]
fn hardware_storage_beyond_2_pow_40_words_is_refused() {
    let path = edited_spec(
        "rf.yaml",
        "rf: { bytes: 512 }",
        "rf: { words: 18446744073709551615 }",
    );
    refused(
        &["energy", "lenet5", "--hw", s(&path)],
        &["rf.yaml", "rf.words", "maximum"],
    );
}

#[test]
fn energies_of_1e308_are_refused_not_inf_totals() {
    let path = edited_spec("e308.yaml", "dram: 200", "dram: 1e308");
    refused(
        &["energy", "alexnet", "--hw", s(&path), "--json"],
        &["e308.yaml", "energy.dram", "1e9"],
    );
    let path = edited_spec("nan.yaml", "mac: 1,", "mac: .nan,");
    refused(
        &["energy", "alexnet", "--hw", s(&path)],
        &["nan.yaml", "energy.mac"],
    );
}

#[test]
fn batch_and_thread_counts_beyond_their_maximum_are_refused() {
    refused(
        &["energy", "lenet5", "--batch", "18446744073709551615"],
        &["--batch", "1048576"],
    );
    refused(&["energy", "lenet5", "--batch", "0"], &["--batch"]);
    refused(
        &[
            "eval",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--threads",
            "1000000",
        ],
        &["--threads", "1024"],
    );
    refused(&["energy", "lenet5", "--bits", "100000"], &["--bits"]);
}

// ---- Graph validation ---------------------------------------------------------------------

#[test]
fn onnx_with_two_nodes_writing_one_output_is_refused() {
    let path = edited_onnx("twice.onnx", |m| {
        let graph = m.graph.as_mut().unwrap();
        let first = graph.node[0].output[0].clone();
        graph.node[1].output[0] = first;
    });
    refused(&["stats", s(&path)], &["twice.onnx", "is already produced"]);
}

#[test]
fn onnx_reading_a_value_no_node_produced_is_refused() {
    let path = edited_onnx("unproduced.onnx", |m| {
        m.graph.as_mut().unwrap().node[1].input[0] = "nowhere".into();
    });
    refused(
        &["stats", s(&path)],
        &["unproduced.onnx", "nowhere", "not produced"],
    );
}

#[test]
fn checkpoint_graph_naming_a_missing_or_later_node_is_refused_not_a_panic() {
    let missing = edited_graph("missing-node.safetensors", |g| {
        g["nodes"][1]["inputs"] = serde_json::json!([{ "Node": 99 }]);
    });
    refused(
        &["stats", s(&missing)],
        &[
            "missing-node.safetensors",
            "joule.graph",
            "node #99",
            "does not exist",
        ],
    );
    let later = edited_graph("later-node.safetensors", |g| {
        g["nodes"][1]["inputs"] = serde_json::json!([{ "Node": 3 }]);
    });
    refused(
        &["eval", "--model", s(&later), "--data", "mnist"],
        &[
            "later-node.safetensors",
            "joule.graph",
            "not an earlier node",
        ],
    );
}

#[test]
fn checkpoint_graph_with_duplicate_node_names_is_refused() {
    let path = edited_graph("twins.safetensors", |g| {
        let name = g["nodes"][1]["name"].clone();
        g["nodes"][2]["name"] = name;
    });
    refused(
        &["stats", s(&path)],
        &["twins.safetensors", "names must be unique"],
    );
}

#[test]
fn hand_edited_prune_state_is_refused_not_a_panic() {
    let run = scratch().join("eap-run");
    let out = joule_process()
        .args(["prune", "--method", "eap", "--model", s(checkpoint())])
        .args([
            "--data",
            "mnist",
            "--train-samples",
            "200",
            "--stop-after",
            "1",
        ])
        .args(["--out", s(&run)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state_path = run.join("state.json");
    let mut state: Json = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["order"][0] = Json::from(99);
    std::fs::write(&state_path, state.to_string()).unwrap();
    refused_within(
        SLOW,
        &["prune", "--resume", s(&run)],
        &["eap-run/state.json", "field `order`", "node 99"],
    );
}

// ---- Numeric health -----------------------------------------------------------------------

#[test]
fn diverging_training_is_an_error_and_writes_no_checkpoint() {
    let out = scratch().join("diverged.safetensors");
    refused_within(
        SLOW,
        &[
            "train", "--model", "lenet5", "--data", "mnist", "--lr", "1e6", "--epochs", "1",
        ]
        .into_iter()
        .chain(["--out", s(&out)])
        .collect::<Vec<_>>(),
        &["training diverged", "epoch 1", "learning rate"],
    );
    assert!(!out.exists(), "a diverged run wrote {}", out.display());
    refused(
        &[
            "train",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--lr",
            "NaN",
            "--out",
            s(&out),
        ],
        &["learning rate"],
    );
}

#[test]
fn non_finite_weights_are_refused_unless_allowed() {
    let path = edited_checkpoint("nan.safetensors", |header, data| {
        let begin = header["fc2.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
        data[begin + 20..begin + 24].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    for args in [
        vec!["eval", "--model", s(&path), "--data", "mnist"],
        vec![
            "export",
            "--model",
            s(&path),
            "--out",
            "/nonexistent/never.onnx",
        ],
        vec![
            "eliminate",
            "--model",
            s(&path),
            "--data",
            "mnist",
            "--out",
            "/nonexistent/e",
        ],
    ] {
        refused(
            &args,
            &["nan.safetensors", "fc2.weight", "NaN", "--allow-non-finite"],
        );
    }
    let out = joule_process()
        .args(["--allow-non-finite", "stats", s(&path)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_empty_dataset_is_refused() {
    let dir = data_with(
        "empty-data",
        &idx(&[0, 28, 28], &[]),
        &idx(&[0], &[]),
        false,
    );
    refused(
        &[
            "train",
            "--model",
            "lenet300",
            "--data",
            "mnist",
            "--data-dir",
            s(&dir),
            "--out",
            "/nonexistent/never.safetensors",
        ],
        &["train-images-idx3-ubyte", "dimensions", "empty"],
    );
}

#[test]
fn eval_of_a_zoo_name_without_weights_is_refused() {
    refused(
        &["eval", "--model", "lenet5", "--data", "mnist"],
        &["--model lenet5", "no trained weights"],
    );
}

#[test]
fn lut_build_with_no_sweeps_or_a_nan_tolerance_is_refused() {
    refused(
        &[
            "lut",
            "build",
            "lenet5",
            "--sweeps",
            "0",
            "--out",
            "/nonexistent/l.json",
        ],
        &["--sweeps"],
    );
    refused(
        &[
            "lut",
            "build",
            "lenet5",
            "--tolerance",
            "NaN",
            "--out",
            "/nonexistent/l.json",
        ],
        &["--tolerance"],
    );
}

#[test]
fn train_into_a_missing_folder_fails_before_training() {
    // Quick: it fails before the first epoch, not after the last.
    refused(
        &[
            "train",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--out",
            "/nonexistent/x.safetensors",
        ],
        &["--out", "/nonexistent"],
    );
}

#[test]
fn resume_with_a_contradicting_flag_names_the_flag() {
    // prune: every stored setting conflicts with --resume.
    refused(
        &[
            "prune",
            "--resume",
            "/nonexistent/run",
            "--data",
            "fashion-mnist",
        ],
        &["--resume", "--data"],
    );
    // adapt: the flags are given again and must match the stored run.
    let run = scratch().join("adapt-run");
    let adapt = |data: &str, resume: bool| {
        let mut cmd = joule_process();
        cmd.args(["adapt", "--model", s(checkpoint()), "--data", data])
            .args(["--budget", "macs=0.9x", "--no-measure", "--iterations", "1"])
            .args([
                "--train-samples",
                "200",
                "--holdout",
                "100",
                "--short-term-batches",
                "1",
            ])
            .args(["--long-term-epochs", "1", "--out", s(&run)]);
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let out = adapt("mnist", false).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args: Vec<String> = adapt("fashion-mnist", true)
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_within(SLOW, &args, &["--data", "cannot resume", "\"mnist\""]);
}

#[test]
fn eliminate_refuses_a_folder_holding_a_run() {
    let run = scratch().join("old-run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("summary.json"), "{}").unwrap();
    refused_within(
        SLOW,
        &[
            "eliminate",
            "--model",
            s(checkpoint()),
            "--data",
            "mnist",
            "--out",
            s(&run),
        ],
        &["old-run", "already holds a run"],
    );
}

// ---- Decompression bombs and declared sizes -------------------------------------------------

#[test]
fn a_gzip_declaring_gigabytes_is_refused_before_allocating() {
    // 5 GiB declared in a few hundred bytes.
    let images = gzip(&idx(&[81920, 256, 256], &[0; 4096]));
    let labels = gzip(&idx(&[81920], &[0; 4096]));
    let dir = data_with("bomb-data", &images, &labels, true);
    refused(
        &[
            "train",
            "--model",
            "lenet300",
            "--data",
            "mnist",
            "--data-dir",
            s(&dir),
            "--out",
            "/nonexistent/never.safetensors",
        ],
        &["train-images-idx3-ubyte.gz", "dimensions", "1073741824"],
    );
    // 512 MiB declared (within the limit) in far fewer bytes than that can compress to.
    let images = gzip(&idx(&[8192, 256, 256], &[0; 4096]));
    let dir = data_with("bomb-data-2", &images, &labels, true);
    refused(
        &[
            "train",
            "--model",
            "lenet300",
            "--data",
            "mnist",
            "--data-dir",
            s(&dir),
            "--out",
            "/nonexistent/never.safetensors",
        ],
        &["train-images-idx3-ubyte.gz", "compressed bytes"],
    );
}

#[test]
fn safetensors_header_errors_name_the_file_and_the_tensor() {
    let path = edited_checkpoint("shape.safetensors", |header, _| {
        header["fc2.bias"]["shape"] = serde_json::json!([101]);
    });
    refused(
        &["stats", s(&path)],
        &["shape.safetensors", "fc2.bias", "shape [101]"],
    );
    let path = edited_checkpoint("offsets.safetensors", |header, _| {
        header["fc1.weight"]["data_offsets"] = serde_json::json!([0, 1u64 << 62]);
    });
    refused(
        &["stats", s(&path)],
        &["offsets.safetensors", "fc1.weight", "data offsets"],
    );
    let bytes = std::fs::read(checkpoint()).unwrap();
    let mut long = bytes.clone();
    long[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let path = scratch().join("length.safetensors");
    std::fs::write(&path, long).unwrap();
    refused(
        &["stats", s(&path)],
        &["length.safetensors", "header", "1099511627776"],
    );
}

// ---- Files that are not what they claim (the cases before issue #19) ------------------------

#[test]
fn missing_truncated_and_garbage_files_are_refused() {
    refused(&["stats", "no/such/model.onnx"], &["no/such/model.onnx"]);
    let garbage = scratch().join("garbage.onnx");
    std::fs::write(&garbage, "definitely not protobuf\n").unwrap();
    refused(
        &["stats", s(&garbage)],
        &["garbage.onnx", "not a valid ONNX"],
    );
    let bytes = std::fs::read(checkpoint()).unwrap();
    let cut = scratch().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&["stats", s(&cut)], &["cut.safetensors"]);
    let spec = edited_spec("typo.yaml", "rows: 16", "rows: sixteen");
    refused(
        &["energy", "lenet5", "--hw", s(&spec)],
        &["typo.yaml", "array.rows"],
    );
}

#[test]
fn usage_errors_are_one_line() {
    refused(
        &["energy", "alexnet", "--dataflow", "ws-isca"],
        &["ws-isca16"],
    );
    refused(&["stats"], &["required"]);
}

// ---- Output ---------------------------------------------------------------------------------

#[test]
fn a_full_stdout_is_one_line_and_a_closed_one_ends_quietly() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = joule_process().arg("zoo").stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("standard output"), "{err}");
    let mut child = joule_process()
        .arg("zoo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}
