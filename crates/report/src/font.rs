//! The font every chart needs: plotters draws SVG text with a registered TrueType font, and
//! joule loads one from the system at run time (the file named by `JOULE_FONT`, else DejaVu
//! Sans or Liberation Sans), so no font ships with joule.

use crate::chart::ChartError;
use plotters::style::FontStyle;
use std::sync::OnceLock;

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the font once per process; later calls return the first outcome.
pub(crate) fn ensure_font() -> Result<(), ChartError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = LOADED.get_or_init(|| {
        let mut candidates: Vec<String> = std::env::var("JOULE_FONT").into_iter().collect();
        candidates.extend(FONT_PATHS.iter().map(|s| s.to_string()));
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps registered fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(candidates.join(", "))
    });
    result.clone().map_err(|tried| ChartError::NoFont { tried })
}
