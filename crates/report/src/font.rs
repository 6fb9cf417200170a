//! The font every chart needs: plotters measures SVG text (legend boxes, label areas) with a
//! registered TrueType font. joule bundles a subset of DejaVu Sans (`fonts/`, Bitstream Vera
//! licence, 85 KB) so charts render on any machine; `JOULE_FONT=/path/to/font.ttf` measures with
//! another font instead. The SVG itself names `sans-serif`: the viewer draws the glyphs.

use crate::chart::ChartError;
use plotters::style::FontStyle;
use std::sync::OnceLock;

/// DejaVu Sans 2.37, cut to Latin, Greek, punctuation, arrows and mathematical operators.
static BUNDLED: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// Registers the font once per process; later calls return the first outcome.
pub(crate) fn ensure_font() -> Result<(), ChartError> {
    static LOADED: OnceLock<Result<(), (String, String)>> = OnceLock::new();
    let result = LOADED.get_or_init(|| {
        let (origin, bytes): (String, &'static [u8]) = match std::env::var_os("JOULE_FONT") {
            Some(path) => {
                let origin = format!("JOULE_FONT={}", path.to_string_lossy());
                let bytes = std::fs::read(&path).map_err(|e| (origin.clone(), e.to_string()))?;
                // plotters keeps registered fonts for the life of the process.
                (origin, Box::leak(bytes.into_boxed_slice()))
            }
            None => ("the bundled DejaVu Sans".to_string(), BUNDLED),
        };
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| (origin, "not a TrueType or OpenType font".to_string()))
    });
    result
        .clone()
        .map_err(|(origin, message)| ChartError::Font { origin, message })
}
