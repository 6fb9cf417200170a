//! SVG scatter charts (plotters): points per series, optionally joined, and an optional
//! `y = x` diagonal (predicted against measured). Fonts as in [`crate::chart`].

use crate::chart::ChartError;
use crate::font::ensure_font;
use plotters::prelude::*;

/// One series of points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Join the points in order.
    pub line: bool,
}

/// A scatter chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Draw `y = x` (for predicted vs measured).
    pub diagonal: bool,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xf2, 0x8e, 0x2b),
];

/// Draws `chart` into an SVG file.
pub fn scatter_svg(chart: &Scatter) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        ensure_font()?;
        let file = "chart".to_string();
        let err = |e: String| ChartError::Draw {
            file: file.clone(),
            message: e,
        };
        let all: Vec<(f64, f64)> = chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = all.iter().fold(
            (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
            |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
        );
        if all.is_empty() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if chart.diagonal {
            (x0, y0) = (x0.min(y0), x0.min(y0));
            (x1, y1) = (x1.max(y1), x1.max(y1));
        }
        let pad = |lo: f64, hi: f64| {
            let d = ((hi - lo) * 0.08).max(1e-9);
            (lo - d)..(hi + d)
        };
        let root = SVGBackend::with_string(&mut out, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut c = ChartBuilder::on(&root)
            .caption(&chart.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(pad(x0, x1), pad(y0, y1))
            .map_err(|e| err(e.to_string()))?;
        c.configure_mesh()
            .x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        if chart.diagonal {
            c.draw_series(LineSeries::new([(x0, x0), (x1, x1)], BLACK.mix(0.4)))
                .map_err(|e| err(e.to_string()))?
                .label("y = x")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.4)));
        }
        for (k, s) in chart.series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            if s.line {
                c.draw_series(LineSeries::new(s.points.clone(), color))
                    .map_err(|e| err(e.to_string()))?;
            }
            c.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| err(e.to_string()))?
                .label(&s.name)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(out)
}
