//! Quantization of a trained network: post-training quantization (PTQ) with calibrated
//! activation ranges, then optionally quantization-aware fine-tuning (QAT) with fake
//! quantization and the straight-through estimator ([`joule_nn::quant`]).
//!
//! The steps, each its own function:
//!
//! 1. [`plan`]: the weight and activation width and the weight scheme of every CONV/FC
//!    layer: the configured widths, per-layer overrides, and the first and last layers at
//!    8-bit uniform at least ([`FirstLast::Eight`], the literature's practice: DoReFa-Net,
//!    PACT and LSQ keep them at 8 bits, XNOR-Net and TWN at full precision; the first layer
//!    reads 8-bit pixels anyway and the last one sets the logits);
//! 2. [`calibrate`]: each layer's input range from the float network's activations on
//!    training images, by min/max or by the clip of least squared error ([`Calibration`]);
//! 3. [`apply`]: the quantizers set on the network; its forward pass is now the quantized
//!    network's (weights quantized per output channel, activations per tensor);
//! 4. [`run`]: the whole run into a [`RunDir`]: PTQ, then QAT epochs (each checkpointed and
//!    resumable), and `quantized.safetensors` with the dequantized weights baked in plus
//!    `quant.json` with every quantizer.
//!
//! Activation ranges stay fixed during QAT (calibrated once, as PTQ left them); weights'
//! per-channel steps follow the float weights at every step.

pub mod mixed;

use crate::{CompressError, RunDir};
use joule_energy::workload::{Bitwidth, LayerBitwidths};
use joule_model::{Graph, Op, Value};
use joule_nn::quant::{calibrate as calibrate_range, Calibration, LayerQuant};
use joule_nn::quant::{WeightQuant, WeightScheme};
use joule_nn::train::Schedule;
use joule_nn::{evaluate, train, Dataset, FeatureMap, Network, OptimizerConfig, TrainConfig};
use joule_onnx::qdq::{QdqInput, QdqLayer, QdqWeights};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The narrowest and widest quantized widths.
pub const MIN_BITS: u32 = 2;
pub const MAX_BITS: u32 = 16;

/// How the first and last CONV/FC layers are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirstLast {
    /// Uniform, at the configured widths but at least 8 bits (the default).
    Eight,
    /// Like every other layer.
    Same,
}

/// Per-layer width overrides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerWidths {
    pub weight: Option<u32>,
    pub activation: Option<u32>,
}

/// Quantization-aware fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Qat {
    pub epochs: usize,
    /// Base learning rate (SGD, momentum 0.9), cosine-annealed over the epochs.
    pub learning_rate: f32,
    pub batch_size: usize,
}

/// What to quantize and how. Every random choice derives from `seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub weight_bits: u32,
    pub activation_bits: u32,
    pub scheme: WeightScheme,
    pub calibration: Calibration,
    /// Training images the activation ranges are calibrated on.
    pub calibration_images: usize,
    pub first_last: FirstLast,
    /// Per-layer widths, by layer name, over the ones above.
    pub layers: BTreeMap<String, LayerWidths>,
    pub qat: Option<Qat>,
    pub seed: u64,
}

impl Config {
    /// Uniform `weight_bits` / `activation_bits`, MSE calibration on 512 images, no QAT.
    pub fn new(weight_bits: u32, activation_bits: u32) -> Config {
        Config {
            weight_bits,
            activation_bits,
            scheme: WeightScheme::Uniform,
            calibration: Calibration::Mse,
            calibration_images: 512,
            first_last: FirstLast::Eight,
            layers: BTreeMap::new(),
            qat: None,
            seed: 1,
        }
    }
}

/// Checks a width: 2 to 16 bits; `field` names the option.
pub fn check_bits(field: &str, bits: u32) -> Result<(), CompressError> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(CompressError::config(
            field,
            format!("must be {MIN_BITS} to {MAX_BITS} bits, got {bits}"),
        ));
    }
    Ok(())
}

/// One CONV/FC layer's widths and scheme.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPlan {
    pub name: String,
    pub node: usize,
    pub scheme: WeightScheme,
    /// Weight code width (ternary and binary store 2 and 1 bits whatever this says).
    pub weight_bits: u32,
    pub activation_bits: u32,
    /// Why these widths: `default`, `first`, `last` or `override`.
    pub reason: String,
}

impl LayerPlan {
    pub fn weight_quant(&self) -> WeightQuant {
        WeightQuant {
            scheme: self.scheme,
            bits: self.weight_bits,
        }
    }

    /// Bits one stored weight takes.
    pub fn weight_storage_bits(&self) -> u32 {
        self.scheme.storage_bits(self.weight_bits)
    }
}

/// The CONV/FC layers with weights, in graph order.
fn weighted(graph: &Graph) -> Vec<(usize, String)> {
    graph
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            matches!(n.op, Op::Conv(_) | Op::FullyConnected(_)) && !n.params.is_empty()
        })
        .map(|(i, n)| (i, n.name.clone()))
        .collect()
}

/// Every CONV/FC layer's widths and scheme under `config`.
pub fn plan(graph: &Graph, config: &Config) -> Result<Vec<LayerPlan>, CompressError> {
    check_bits("weight_bits", config.weight_bits)?;
    check_bits("activation_bits", config.activation_bits)?;
    let layers = weighted(graph);
    if layers.is_empty() {
        return Err(CompressError::NoWeightedLayers {
            model: graph.name.clone(),
        });
    }
    for (name, widths) in &config.layers {
        if !layers.iter().any(|(_, n)| n == name) {
            let known: Vec<&str> = layers.iter().map(|(_, n)| n.as_str()).collect();
            return Err(CompressError::config(
                "layer_bits",
                format!(
                    "{name:?} is no CONV/FC layer (layers: {})",
                    known.join(", ")
                ),
            ));
        }
        for b in [widths.weight, widths.activation].into_iter().flatten() {
            if !(MIN_BITS..=MAX_BITS).contains(&b) {
                return Err(CompressError::config(
                    "layer_bits",
                    format!("{name}: widths must be {MIN_BITS} to {MAX_BITS} bits, got {b}"),
                ));
            }
        }
    }
    let last = layers.len() - 1;
    Ok(layers
        .into_iter()
        .enumerate()
        .map(|(k, (node, name))| {
            let mut p = LayerPlan {
                name: name.clone(),
                node,
                scheme: config.scheme,
                weight_bits: config.weight_bits,
                activation_bits: config.activation_bits,
                reason: "default".into(),
            };
            if config.first_last == FirstLast::Eight && (k == 0 || k == last) {
                p.scheme = WeightScheme::Uniform;
                p.weight_bits = p.weight_bits.max(8);
                p.activation_bits = p.activation_bits.max(8);
                p.reason = if k == 0 { "first" } else { "last" }.into();
            }
            if let Some(o) = config.layers.get(&name) {
                p.weight_bits = o.weight.unwrap_or(p.weight_bits);
                p.activation_bits = o.activation.unwrap_or(p.activation_bits);
                p.reason = "override".into();
            }
            p
        })
        .collect())
}

/// A layer's quantizers, by name, as `quant.json` stores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedQuant {
    pub name: String,
    pub quant: LayerQuant,
}

/// Calibrates every planned layer's input quantizer on the float network's activations
/// for `images` (all layers from one pass: each range sees the float network's values).
pub fn calibrate(
    network: &Network,
    plan: &[LayerPlan],
    images: &FeatureMap,
    method: Calibration,
) -> Result<Vec<NamedQuant>, CompressError> {
    let mut float = network.clone();
    float.clear_quant();
    let trace = float.trace(images)?;
    Ok(plan
        .iter()
        .map(|p| {
            let values = match network.graph().nodes()[p.node].inputs[0] {
                Value::Input => images.data.clone(),
                Value::Node(id) => trace.output(id).data,
            };
            NamedQuant {
                name: p.name.clone(),
                quant: LayerQuant {
                    weight: Some(p.weight_quant()),
                    input: Some(calibrate_range(&values, p.activation_bits, method)),
                },
            }
        })
        .collect())
}

/// Sets `quants` on the network's layers of those names.
pub fn apply(network: &mut Network, quants: &[NamedQuant]) -> Result<(), CompressError> {
    for q in quants {
        let id = network.graph().find(&q.name).ok_or_else(|| {
            CompressError::config("quant", format!("no layer {:?} in the network", q.name))
        })?;
        network.set_quant(id, q.quant)?;
    }
    Ok(())
}

/// The widths the energy model should cost each layer at: weights at their storage width,
/// ifmaps at the activation width; psums stay at the machine's word width (accumulators
/// are not quantized here).
pub fn energy_widths(plan: &[LayerPlan]) -> LayerBitwidths {
    plan.iter()
        .map(|p| {
            (
                p.name.clone(),
                Bitwidth {
                    ifmap: Some(p.activation_bits),
                    filter: Some(p.weight_storage_bits()),
                    psum: None,
                },
            )
        })
        .collect()
}

/// The QDQ description of every quantized layer of `network` for
/// [`joule_onnx::qdq::export_qdq_bytes`]: weight codes and steps as the engine computes them
/// from the graph's weights, input scale and zero point.
pub fn qdq_layers(network: &Network) -> Vec<QdqLayer> {
    network
        .graph()
        .nodes()
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let quant = network.quant(joule_model::NodeId(i))?;
            let weights = quant.weight.map(|w| {
                let channels = node.params[0].shape[0];
                let q = joule_nn::quant::quantize_weights(&node.params[0].data, channels, w);
                QdqWeights {
                    codes: q.codes,
                    steps: q.steps,
                }
            });
            let input = quant.input.map(|a| QdqInput {
                bits: a.bits,
                scale: a.scale(),
                zero_point: a.zero_point(),
            });
            Some(QdqLayer {
                name: node.name.clone(),
                weights,
                input,
            })
        })
        .collect()
}

/// A quantized network as ONNX QDQ bytes.
pub fn export_qdq(network: &Network) -> Result<Vec<u8>, CompressError> {
    joule_onnx::qdq::export_qdq_bytes(network.graph(), &qdq_layers(network))
        .map_err(|e| CompressError::file(CHECKPOINT.replace("safetensors", "onnx"), e))
}

/// One QAT epoch's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: usize,
    pub learning_rate: f32,
    pub mean_loss: f32,
    /// Test accuracy of the quantized network after the epoch.
    pub accuracy: f64,
}

/// What `state.json` holds: the configuration, the accuracies so far, the QAT history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub config: Config,
    pub float_accuracy: f64,
    pub ptq_accuracy: f64,
    pub epochs: Vec<Epoch>,
}

/// What a finished run found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub plan: Vec<LayerPlan>,
    pub quant: Vec<NamedQuant>,
    pub float_accuracy: f64,
    pub ptq_accuracy: f64,
    pub epochs: Vec<Epoch>,
    /// Test accuracy of the final quantized network (after QAT if any).
    pub accuracy: f64,
}

/// Progress of a run.
#[derive(Clone, Debug)]
pub enum Event {
    Float { accuracy: f64 },
    Ptq { accuracy: f64 },
    Epoch(Epoch),
}

/// Files of a quantization run.
pub const QUANT: &str = "quant.json";
pub const QAT_CHECKPOINT: &str = "qat.safetensors";
pub const CHECKPOINT: &str = "quantized.safetensors";

/// The batch size of test-split evaluation.
const EVAL_BATCH: usize = 500;

/// Quantizes `network` into `dir`: PTQ, then QAT epochs, each checkpointed (`state.json`,
/// `quant.json`, `qat.safetensors`); with `resume`, a run in `dir` continues after its last
/// finished epoch under its stored configuration. Returns the quantized network (its
/// quantizers set, its weights baked) and the outcome; `quantized.safetensors` holds it.
pub fn run(
    network: &Network,
    train_data: &Dataset,
    test: &Dataset,
    config: &Config,
    dir: &RunDir,
    resume: bool,
    mut on_event: impl FnMut(&Event),
) -> Result<(Network, Outcome), CompressError> {
    let (mut net, quant, mut state) = if resume {
        let state: State = dir.read_json(RunDir::STATE)?;
        let quant: Vec<NamedQuant> = dir.read_json(QUANT)?;
        let mut net = dir.load_network(QAT_CHECKPOINT)?;
        apply(&mut net, &quant)?;
        (net, quant, state)
    } else {
        let plan = plan(network.graph(), config)?;
        if let Some(q) = &config.qat {
            if q.epochs == 0
                || q.batch_size == 0
                || q.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            {
                return Err(CompressError::config(
                    "qat",
                    "needs epochs, a batch size and a learning rate above zero",
                ));
            }
        }
        let float_accuracy = evaluate(network, test, EVAL_BATCH)?.accuracy;
        on_event(&Event::Float {
            accuracy: float_accuracy,
        });
        let images =
            crate::metrics::calibration_batch(train_data, config.calibration_images, config.seed)?;
        let quant = calibrate(network, &plan, &images, config.calibration)?;
        let mut net = network.clone();
        apply(&mut net, &quant)?;
        let ptq_accuracy = evaluate(&net, test, EVAL_BATCH)?.accuracy;
        on_event(&Event::Ptq {
            accuracy: ptq_accuracy,
        });
        let state = State {
            config: config.clone(),
            float_accuracy,
            ptq_accuracy,
            epochs: Vec::new(),
        };
        dir.write_json(QUANT, &quant)?;
        dir.save_checkpoint(QAT_CHECKPOINT, &net)?;
        dir.write_json(RunDir::STATE, &state)?;
        (net, quant, state)
    };
    let config = state.config.clone();
    if let Some(qat) = &config.qat {
        for epoch in state.epochs.len()..qat.epochs {
            // Cosine annealing, one learning rate per epoch: each epoch is one resumable
            // unit with its own optimizer (momentum restarts at epoch boundaries).
            let t = epoch as f32 / qat.epochs as f32;
            let lr = qat.learning_rate * 0.5 * (1.0 + (std::f32::consts::PI * t).cos());
            let tc = TrainConfig {
                epochs: 1,
                batch_size: qat.batch_size,
                learning_rate: lr,
                schedule: Schedule::Constant,
                optimizer: OptimizerConfig::Sgd {
                    momentum: 0.9,
                    weight_decay: 0.0,
                },
                seed: config
                    .seed
                    .wrapping_mul(1000)
                    .wrapping_add(epoch as u64 + 1),
                shift: 0,
            };
            let losses = train(&mut net, train_data, &tc, |_| {})?;
            let mean_loss = losses[0];
            if !mean_loss.is_finite() {
                return Err(CompressError::Diverged {
                    step: epoch,
                    what: "quantization-aware fine-tuning".into(),
                    detail: format!("mean loss {mean_loss}"),
                    checkpoint: QAT_CHECKPOINT.into(),
                });
            }
            let accuracy = evaluate(&net, test, EVAL_BATCH)?.accuracy;
            let record = Epoch {
                epoch,
                learning_rate: lr,
                mean_loss,
                accuracy,
            };
            state.epochs.push(record.clone());
            dir.save_checkpoint(QAT_CHECKPOINT, &net)?;
            dir.write_json(RunDir::STATE, &state)?;
            on_event(&Event::Epoch(record));
        }
    }
    let plan = plan(net.graph(), &config)?;
    net.bake_weights();
    dir.save_checkpoint(CHECKPOINT, &net)?;
    let accuracy = state
        .epochs
        .last()
        .map_or(state.ptq_accuracy, |e| e.accuracy);
    Ok((
        net,
        Outcome {
            plan,
            quant,
            float_accuracy: state.float_accuracy,
            ptq_accuracy: state.ptq_accuracy,
            epochs: state.epochs,
            accuracy,
        },
    ))
}
