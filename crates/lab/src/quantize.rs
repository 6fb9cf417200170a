//! Quantization experiments into a run directory (docs/quantize.md): post-training
//! quantization and optional quantization-aware fine-tuning of a trained model on real data
//! ([`joule_compress::quantize`]), with the energy of the float and the quantized network on
//! one machine at their widths. Writes `summary.json` ([`QuantizeSummary`]), `state.json`,
//! `quant.json`, `quantized.safetensors`, `quantized.onnx` (QDQ) and `energy.svg`.

use crate::data::DataSpec;
use crate::error::LabError;
use crate::estimate::{self, EnergyOptions};
use crate::hardware;
use crate::model::Model;
pub use joule_compress::quantize::Event;
use joule_compress::quantize::{self, Config, Epoch, FirstLast, LayerPlan, LayerWidths, Qat};
use joule_compress::RunDir;
use joule_nn::quant::{Calibration, WeightScheme};
use joule_report::{stacked_bars_svg, StackedBars};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A quantization run.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    /// A trained model (checkpoint or ONNX file with weights).
    pub model: String,
    pub data: DataSpec,
    /// The machine the energy is estimated on.
    pub hw: String,
    pub config: Config,
    pub out: PathBuf,
    pub resume: bool,
}

impl QuantizeOptions {
    /// PTQ at `weight_bits` / `activation_bits` with the library's defaults.
    pub fn new(
        model: &str,
        data: DataSpec,
        hw: &str,
        weight_bits: u32,
        activation_bits: u32,
        out: PathBuf,
    ) -> QuantizeOptions {
        QuantizeOptions {
            model: model.to_string(),
            data,
            hw: hw.to_string(),
            config: Config::new(weight_bits, activation_bits),
            out,
            resume: false,
        }
    }
}

/// Parses a bit-width option: a whole number from 2 to 16; `field` names the option.
pub fn parse_bits(field: &str, text: &str) -> Result<u32, LabError> {
    bits_of(text).map_err(|message| LabError::config(field, message))
}

/// A width from 2 to 16, or what is wrong with `text`.
fn bits_of(text: &str) -> Result<u32, String> {
    let (min, max) = (quantize::MIN_BITS, quantize::MAX_BITS);
    match text.trim().parse::<u32>() {
        Ok(bits) if (min..=max).contains(&bits) => Ok(bits),
        Ok(bits) => Err(format!("must be {min} to {max} bits, got {bits}")),
        Err(_) => Err(format!("{text:?} is not a number of bits ({min} to {max})")),
    }
}

/// Parses per-layer widths, `layer=W/A` separated by commas (`conv1=8/8,fc2=4/6`); either
/// width may be empty to keep the default (`fc2=/6`).
pub fn parse_layer_bits(text: &str) -> Result<BTreeMap<String, LayerWidths>, LabError> {
    let mut layers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            LabError::config(
                "layer_bits",
                format!("{item:?}: expected layer=W/A, e.g. conv1=8/8"),
            )
        };
        let (name, widths) = item.split_once('=').ok_or_else(bad)?;
        let (w, a) = widths.split_once('/').ok_or_else(bad)?;
        let parse = |kind: &str, s: &str| -> Result<Option<u32>, LabError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            bits_of(s)
                .map(Some)
                .map_err(|e| LabError::config("layer_bits", format!("{name} {kind}: {e}")))
        };
        layers.insert(
            name.trim().to_string(),
            LayerWidths {
                weight: parse("weight", w)?,
                activation: parse("activation", a)?,
            },
        );
    }
    Ok(layers)
}

/// Parses a weight scheme name.
pub fn parse_scheme(text: &str) -> Result<WeightScheme, LabError> {
    WeightScheme::parse(text).ok_or_else(|| {
        LabError::config(
            "scheme",
            format!("{text:?}: expected uniform, power-of-two, ternary or binary"),
        )
    })
}

/// Parses a calibration name.
pub fn parse_calibration(text: &str) -> Result<Calibration, LabError> {
    Calibration::parse(text)
        .ok_or_else(|| LabError::config("calibration", format!("{text:?}: expected mse or minmax")))
}

/// Parses a first/last-layer policy.
pub fn parse_first_last(text: &str) -> Result<FirstLast, LabError> {
    match text {
        "8" | "eight" => Ok(FirstLast::Eight),
        "same" => Ok(FirstLast::Same),
        _ => Err(LabError::config(
            "first_last",
            format!("{text:?}: expected 8 or same"),
        )),
    }
}

/// One layer's energy, float (the machine's word width) and quantized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerEnergy {
    pub name: String,
    pub weight_bits: u32,
    pub activation_bits: u32,
    pub float: f64,
    pub quantized: f64,
}

/// A network's energy and cycles per image before and after quantization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub float: f64,
    pub quantized: f64,
    /// `float / quantized`.
    pub ratio: f64,
}

/// `summary.json` of a quantization run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeSummary {
    pub model: String,
    pub data: String,
    pub hardware: String,
    /// The unit of every energy here (`pJ`, or `mac` for MAC-normalised machines).
    pub unit: String,
    /// The machine's word width: the reference the float network is costed at.
    pub word_bits: Option<u32>,
    pub config: Config,
    pub plan: Vec<LayerPlan>,
    pub float_accuracy: f64,
    pub ptq_accuracy: f64,
    /// Test accuracy of the final quantized network.
    pub accuracy: f64,
    pub epochs: Vec<Epoch>,
    pub energy: Cost,
    /// Energy with the densities measured on calibration images (zero weights, e.g. of a
    /// pruned checkpoint, and zero ifmaps skipped, as `joule prune` costs them), float and
    /// quantized: the energy of pruning and quantization together.
    #[serde(default)]
    pub measured_energy: Option<Cost>,
    pub cycles: Cost,
    pub layers: Vec<LayerEnergy>,
    pub checkpoint: String,
    pub onnx: String,
}

/// Calibration images the measured densities are taken on (as many as `joule prune`'s).
const MEASURE_IMAGES: usize = 256;

/// Runs PTQ (and QAT when configured) and writes the run directory.
pub fn quantize(
    options: &QuantizeOptions,
    mut on_event: impl FnMut(&Event),
) -> Result<QuantizeSummary, LabError> {
    let machine = hardware::machine(&options.hw)?;
    let model = Model::load(&options.model)?;
    let network = model.weighted_network()?;
    // Check the widths and layer names before anything is loaded or written.
    quantize::plan(network.graph(), &options.config)?;
    let data = options.data.load()?;
    let (dir, resumed) = RunDir::create_or_resume(&options.out, options.resume)?;
    let (quantized, outcome) = quantize::run(
        &network,
        &data.train,
        &data.test,
        &options.config,
        &dir,
        resumed,
        &mut on_event,
    )?;
    let onnx = "quantized.onnx";
    dir.write(onnx, quantize::export_qdq(&quantized)?)?;
    let config: quantize::State = dir.read_json(RunDir::STATE)?;
    let config = config.config;
    let float_options = EnergyOptions::new(&options.model, &options.hw);
    float_options.check()?;
    let float = estimate::energy_on(&model, &machine, &float_options)?;
    let mut q_options = float_options.clone();
    q_options.layer_bits = quantize::energy_widths(&outcome.plan);
    let q = estimate::energy_on(&model, &machine, &q_options)?;
    let cost = |a: f64, b: f64| Cost {
        float: a,
        quantized: b,
        ratio: if b > 0.0 { a / b } else { 0.0 },
    };
    let layers = outcome
        .plan
        .iter()
        .map(|p| LayerEnergy {
            name: p.name.clone(),
            weight_bits: p.weight_storage_bits(),
            activation_bits: p.activation_bits,
            float: float.layer(&p.name).map_or(0.0, |c| c.energy.total),
            quantized: q.layer(&p.name).map_or(0.0, |c| c.energy.total),
        })
        .collect();
    // The float network's zeros: weights as the checkpoint holds them, ifmaps as the
    // calibration images make them (the quantized network's, through its quantizers).
    let images = joule_compress::metrics::calibration_batch(
        &data.train,
        MEASURE_IMAGES,
        options.config.seed,
    )?;
    let measure = |net: &joule_nn::Network, bits| -> Result<f64, LabError> {
        Ok(
            joule_compress::metrics::measure_layers_at(net, &images, &machine, bits)?
                .iter()
                .map(|l| l.energy)
                .sum(),
        )
    };
    let measured_energy = Some(cost(
        measure(&network, &Default::default())?,
        measure(&quantized, &quantize::energy_widths(&outcome.plan))?,
    ));
    let summary = QuantizeSummary {
        model: options.model.clone(),
        data: data.source.name().to_string(),
        hardware: machine.name().to_string(),
        unit: machine.unit().to_string(),
        word_bits: match &machine {
            joule_energy::Machine::Digital(hw) => Some(hw.word_bits),
            joule_energy::Machine::Pim(hw) => Some(hw.word_bits),
        },
        config,
        plan: outcome.plan,
        float_accuracy: outcome.float_accuracy,
        ptq_accuracy: outcome.ptq_accuracy,
        accuracy: outcome.accuracy,
        epochs: outcome.epochs,
        energy: cost(float.total.energy.total, q.total.energy.total),
        measured_energy,
        cycles: cost(float.total.cycles, q.total.cycles),
        layers,
        checkpoint: quantize::CHECKPOINT.to_string(),
        onnx: onnx.to_string(),
    };
    dir.write("energy.svg", stacked_bars_svg(&energy_panels(&summary))?)?;
    dir.write_json(RunDir::SUMMARY, &summary)?;
    Ok(summary)
}

/// Per-layer energy at the machine's word width and quantized: two panels on one axis.
pub fn energy_panels(s: &QuantizeSummary) -> Vec<StackedBars> {
    let categories: Vec<String> = s
        .layers
        .iter()
        .map(|l| format!("{} ({}/{})", l.name, l.weight_bits, l.activation_bits))
        .collect();
    let model = crate::prune::display_name(&s.model);
    let panel = |title: String, values: Vec<f64>| StackedBars {
        title,
        y_label: estimate::energy_label(&s.unit),
        categories: categories.clone(),
        series: vec![("energy".into(), values)],
        log_y: false,
    };
    vec![
        panel(
            format!(
                "{model} on {}: energy per layer at {} bits",
                s.hardware,
                s.word_bits.unwrap_or(0)
            ),
            s.layers.iter().map(|l| l.float).collect(),
        ),
        panel(
            format!(
                "{model} on {}: energy per layer quantized (weight/activation bits)",
                s.hardware
            ),
            s.layers.iter().map(|l| l.quantized).collect(),
        ),
    ]
}

/// The run as text: accuracies, energy and the per-layer widths.
pub fn report(s: &QuantizeSummary) -> String {
    let mut t = format!(
        "{} on {}: float {:.2}%, PTQ {:.2}%, final {:.2}%\n",
        s.model,
        s.data,
        100.0 * s.float_accuracy,
        100.0 * s.ptq_accuracy,
        100.0 * s.accuracy
    );
    t += &format!(
        "energy on {}: {:.4e} -> {:.4e} {} ({:.2}x less), cycles {:.4e} -> {:.4e}\n",
        s.hardware,
        s.energy.float,
        s.energy.quantized,
        s.unit,
        s.energy.ratio,
        s.cycles.float,
        s.cycles.quantized
    );
    if let Some(m) = &s.measured_energy {
        t += &format!(
            "energy with measured densities (zero weights and ifmaps skipped): {:.4e} -> {:.4e} {} ({:.2}x less)\n",
            m.float, m.quantized, s.unit, m.ratio
        );
    }
    for (p, l) in s.plan.iter().zip(&s.layers) {
        t += &format!(
            "  {:8} {:12} w{:>2} a{:>2} ({})  energy {:.4e} -> {:.4e}\n",
            p.name,
            p.scheme.name(),
            p.weight_bits,
            p.activation_bits,
            p.reason,
            l.float,
            l.quantized
        );
    }
    t
}

/// QAT settings from the command line's values.
pub fn qat(epochs: usize, learning_rate: f32, batch_size: usize) -> Option<Qat> {
    (epochs > 0).then_some(Qat {
        epochs,
        learning_rate,
        batch_size,
    })
}
