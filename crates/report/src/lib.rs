//! Presentation for joule's results, all rendered to strings so the caller decides where they go
//! (a file, stdout, an HTML page):
//!
//! - [`Table`]: the same rows as an aligned text table or as CSV, so `--csv` and the default view
//!   never disagree; [`human`] and [`eng`] format numbers for it.
//! - Charts as SVG documents: [`stacked_bars_svg`] ([`StackedBars`], linear or log y),
//!   [`curves::curves_svg`] ([`curves::Curves`], with a Pareto [`curves::Front`] from
//!   [`curves::pareto_front`]) and [`scatter_svg`] ([`Scatter`]). Tick labels are in engineering
//!   notation, colours are the colour-blind-safe Okabe–Ito palette, and every bar segment and
//!   point carries its exact values in an SVG `<title>` (a tooltip on hover). Text is measured
//!   with a bundled subset of DejaVu Sans (`JOULE_FONT` picks another font).
//!
//! ```
//! use joule_report::{eng, stacked_bars_svg, StackedBars, Table};
//!
//! let mut t = Table::new(["layer", "macs"]);
//! t.row(["conv1", "105415200"]);
//! assert!(t.to_text().contains("conv1"));
//! assert_eq!(t.to_csv().unwrap(), "layer,macs\nconv1,105415200\n");
//! assert_eq!(eng(105415200.0), "105 M");
//!
//! let svg = stacked_bars_svg(&[StackedBars {
//!     title: "energy by level".into(),
//!     y_label: "energy (pJ)".into(),
//!     categories: vec!["conv1".into()],
//!     series: vec![("DRAM".into(), vec![2.5e6]), ("RF".into(), vec![1.0e6])],
//!     log_y: false,
//! }])
//! .unwrap();
//! assert!(svg.contains("<title>conv1 · DRAM"));

//! ```

mod table;

pub use table::{human, Table};

pub mod chart;
pub use chart::{stacked_bars_svg, ChartError, StackedBars};
pub mod curves;
mod font;
mod notation;
pub use notation::eng;
pub mod scatter;
pub use scatter::{scatter_svg, Scatter, Series};
mod style;
