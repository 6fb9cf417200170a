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
//! - [`html::Page`]: one self-contained HTML document (inline CSS and JS, no network requests)
//!   of sections with explanations, inline charts, sortable tables and metric lists.
//!
//! ```
//! use joule_report::{eng, html::Page, stacked_bars_svg, StackedBars, Table};
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
//!
//! let mut page = Page::new("alexnet on eyeriss", "batch 1, row-stationary");
//! page.section("Energy per layer")
//!     .how_to_read("Each bar is a layer; hover a segment for its exact energy.")
//!     .chart(svg)
//!     .table(&t);
//! let html = page.render();
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<table"));
//! ```

mod table;

pub use table::{human, Table};

pub mod chart;
pub use chart::{stacked_bars_svg, ChartError, StackedBars};
pub mod curves;
mod font;
pub mod html;
mod notation;
pub use notation::eng;
pub mod scatter;
pub use scatter::{scatter_svg, Scatter, Series};
mod style;
