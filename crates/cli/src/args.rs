//! Flags shared by several subcommands, each turned into the library's configuration.

use clap::Args;
use joule_lab::DataSpec;
use std::path::PathBuf;

/// `--json` / `--csv`; the default is a text table.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct FormatArgs {
    /// Print machine-readable JSON (a documented, stable interface).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (one row per layer).
    #[arg(long)]
    pub csv: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

impl FormatArgs {
    pub fn format(self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Text
        }
    }
}

/// The dataset flags of every command that reads real data.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// mnist or fashion-mnist.
    #[arg(long)]
    pub data: String,
    /// Folder holding the datasets (default: $JOULE_DATA, else data/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl DataArgs {
    pub fn spec(&self) -> DataSpec {
        DataSpec::new(&self.data, self.data_dir.as_deref())
    }
}

/// The machine of every command that estimates on one.
#[derive(Args, Clone, Debug)]
pub struct MachineArgs {
    /// Hardware: a preset (`joule energy --list-hw`; `pim-*` are processing-in-memory) or a
    /// YAML spec file (`model: pim` for a PIM spec). Default: eyeriss.
    #[arg(long, value_name = "PRESET|FILE")]
    pub hw: Option<String>,
}

impl MachineArgs {
    pub fn name(&self) -> String {
        self.name_or("eyeriss")
    }

    pub fn name_or(&self, default: &str) -> String {
        self.hw.clone().unwrap_or_else(|| default.to_string())
    }
}

/// Several machines: `--hw` repeated or comma-separated.
#[derive(Args, Clone, Debug)]
pub struct MachinesArgs {
    /// Hardware, repeatable or comma-separated: presets (`joule energy --list-hw`) or YAML
    /// spec files, digital or PIM.
    #[arg(long, value_name = "PRESET|FILE", value_delimiter = ',')]
    pub hw: Vec<String>,
}

impl MachinesArgs {
    pub fn names_or(&self, defaults: &[&str]) -> Vec<String> {
        if self.hw.is_empty() {
            defaults.iter().map(|s| s.to_string()).collect()
        } else {
            self.hw.iter().map(|s| s.trim().to_string()).collect()
        }
    }
}

/// How latency is measured (`joule lut`, `joule adapt`).
#[derive(Args, Clone, Debug)]
pub struct TimingArgs {
    /// Batch size of the measured inference.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Threads of the inference engine.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Runs per round; rounds repeat until the median moves by at most --tolerance.
    #[arg(long, default_value_t = 15)]
    round: usize,
    /// Relative change of the median between rounds below which a measurement is stable.
    #[arg(long, default_value_t = 0.02)]
    tolerance: f64,
    /// Most timed runs per layer; a layer that reaches it is reported as unstable.
    #[arg(long, default_value_t = 150)]
    max_runs: usize,
    /// Sweeps over the table (a network: repeated measurements --pause-ms apart); the median
    /// of the sweeps' medians is kept, so a slow phase of a shared machine is voted out.
    #[arg(long, default_value_t = 7)]
    sweeps: usize,
    /// Pause between the sweeps of one network's measurement, in ms.
    #[arg(long, default_value_t = 100)]
    pause_ms: u64,
    /// Before every sweep, wait while a calibration layer runs this much slower than its
    /// fastest (a slow phase of a shared machine); 0 turns the gate off.
    #[arg(long, default_value_t = 0.1)]
    gate_tolerance: f64,
    /// Longest wait for the normal speed before a sweep, in ms (then it runs anyway).
    #[arg(long, default_value_t = 30_000)]
    gate_wait_ms: u64,
    /// How table entries are timed: `streamed` (the probes in chains in the network's order,
    /// as the engine runs its steps) or `isolated` (each repeated on its own, hot caches:
    /// under-predicts networks of small layers, e.g. MobileNets by 45%).
    #[arg(long, default_value = "streamed")]
    context: joule_lab::LutContext,
}

impl TimingArgs {
    pub fn timing(&self) -> joule_lab::lut::Timing {
        joule_lab::lut::Timing {
            batch: self.batch,
            threads: self.threads,
            measure: joule_lab::MeasureConfig {
                warmup: self.warmup,
                round: self.round,
                tolerance: self.tolerance,
                max_runs: self.max_runs,
                sweeps: self.sweeps,
                pause_ms: self.pause_ms,
                gate_tolerance: self.gate_tolerance,
                gate_wait_ms: self.gate_wait_ms,
                context: self.context,
            },
        }
    }
}

/// How an estimate runs: dataflow, batch, the mapper's objective, densities and the word
/// width (`joule energy`, `joule eyexam`).
#[derive(Args, Clone, Debug)]
pub struct EstimateArgs {
    /// Dataflow: rs, ws, os (best of os-a, os-b, os-c) or nlr; also os-a, os-b, os-c and
    /// ws-isca16 (WS as the ISCA'16 analysis evaluates it).
    #[arg(long, default_value = "rs")]
    pub dataflow: joule_lab::Dataflow,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// What the mapper minimises: energy, cycles or edp.
    #[arg(long, default_value = "energy")]
    pub objective: joule_lab::Objective,
    /// Ifmap density (fraction of non-zeros) for every layer.
    #[arg(long)]
    pub ifmap_density: Option<f64>,
    /// Weight density for every layer (default: measured from the model's weights, else 1).
    #[arg(long)]
    pub weight_density: Option<f64>,
    /// Per-layer densities: a YAML or JSON file mapping layer name -> {weight, ifmap}
    /// (applied after --ifmap-density / --weight-density).
    #[arg(long, value_name = "FILE")]
    pub density: Option<PathBuf>,
    /// Bits per ifmap, filter and psum value (default: the machine's word width).
    #[arg(long)]
    pub bits: Option<u32>,
}

impl EstimateArgs {
    /// The library's options for `model` on `hw` with these flags.
    pub fn options(self, model: &str, hw: &str) -> joule_lab::estimate::EnergyOptions {
        let mut options = joule_lab::estimate::EnergyOptions::new(model, hw);
        options.dataflow = self.dataflow;
        options.batch = self.batch;
        options.objective = self.objective;
        options.ifmap_density = self.ifmap_density;
        options.weight_density = self.weight_density;
        options.density_file = self.density;
        options.bits = self.bits;
        options
    }
}
