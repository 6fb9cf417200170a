//! Presentation for joule's results: [`Table`] renders the same rows as an aligned text
//! table or as CSV, so `--csv` and the default view never disagree.
//!
//! ```
//! use joule_report::Table;
//!
//! let mut t = Table::new(["layer", "macs"]);
//! t.row(["conv1", "105415200"]);
//! assert!(t.to_text().contains("conv1"));
//! assert_eq!(t.to_csv().unwrap(), "layer,macs\nconv1,105415200\n");
//! ```

mod table;

pub use table::{human, Table};

pub mod chart;
pub use chart::{stacked_bars_svg, ChartError, StackedBars};
pub mod curves;
mod font;
pub mod scatter;
pub use scatter::{scatter_svg, Scatter, Series};
