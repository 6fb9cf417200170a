//! joule's energy engine: an Eyeriss-style energy and cycle model with an exact dataflow
//! mapper.
//!
//! Per layer, `E = E_compute + E_data`, where `E_data` sums, over the memory levels (DRAM,
//! global buffer, array network, per-PE RF) and data types (ifmap, filter, psum), the number
//! of accesses times the energy per access; the access counts come from the best mapping of
//! the layer's loop nest onto the hardware under a dataflow (RS, WS, OS, NLR).
//!
//! The pieces, Timeloop-style, each in its own module:
//!
//! * [`access`]: the two axes of every count, [`Level`] (DRAM, buffer, array, RF) and
//!   [`Tensor`] (ifmap, filter, psum), and the values indexed by them ([`PerTensor`],
//!   [`PerLevel`], [`Accesses`]);
//! * [`spec`]: the architecture, a YAML [`Hardware`] spec with presets (`eyeriss`, `isca16`,
//!   `horowitz45`), validated once;
//! * [`workload`]: a CONV/FC layer ([`Workload`]) built from the IR's loop nest, with its
//!   density and bitwidths;
//! * [`dataflow`]: the spatial part of a mapping, where each [`Dataflow`] is a constraint;
//! * [`mapping`]: a mapping (spatial pass + temporal [`mapping::Blocking`]) and its access
//!   counts (the ISCA'16 `a, b, c, d` formulation);
//! * [`mapspace`] and [`search`]: the exact, pruned search for the best mapping;
//! * [`cost`]: energy, cycles, DRAM bytes, with sparsity and bitwidth;
//! * [`network`]: whole-network reports with a stable JSON form;
//! * [`compare`]: the ISCA'16 dataflow comparison at equal storage area;
//! * [`weight_fetch`]: the simple per-weight model used with `horowitz45`;
//! * [`pim`]: processing-in-memory crossbar arrays (presets `pim-128` ... `pim-4096`), into
//!   the same report;
//! * [`machine`]: a digital or PIM machine behind one `load` / `evaluate`.
//!
//! ```
//! use joule_energy::{network, spec, workload, Dataflow, Objective};
//! use joule_model::zoo;
//!
//! let hw = spec::preset("eyeriss").unwrap();
//! let alexnet = zoo::build("alexnet").unwrap();
//! let layers = workload::from_graph(&alexnet, None, 1).unwrap();
//! let report = network::evaluate("alexnet", &layers, &hw, Dataflow::Rs, Objective::Energy).unwrap();
//! let conv1 = report.layer("conv1").unwrap();
//! assert_eq!(conv1.macs, 105_415_200);
//! // Data movement, not arithmetic, dominates.
//! assert!(report.total.energy.total > 3.0 * report.total.energy.mac);
//! ```

// `is_multiple_of` and `is_none_or` would raise the MSRV above the workspace's 1.80.
#![allow(clippy::manual_is_multiple_of, clippy::unnecessary_map_or)]

pub mod access;
pub mod area;
pub mod compare;
pub mod cost;
pub mod dataflow;
mod error;
pub mod eyexam;
pub mod machine;
pub mod mapping;
pub mod mapspace;
pub mod network;
pub mod pim;
pub mod search;
pub mod spec;
pub mod weight_fetch;
pub mod workload;

pub use access::{Accesses, Level, PerLevel, PerTensor, Tensor};
pub use cost::LayerCost;
pub use dataflow::Dataflow;
pub use error::EnergyError;
pub use machine::Machine;
pub use network::NetworkCost;
pub use search::Objective;
pub use spec::Hardware;
pub use workload::Workload;
