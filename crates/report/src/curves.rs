//! SVG line charts (plotters): trade-off curves such as accuracy against energy, one line per
//! series, with optional highlighted points (a Pareto set).
//!
//! Fonts come from the system at run time, as in [`crate::chart`] (DejaVu Sans or Liberation
//! Sans, or the file named by `JOULE_FONT`); no font ships with joule.

use crate::chart::ChartError;
use crate::font::ensure_font;
use plotters::prelude::*;

/// One line: a name and its `(x, y)` points, drawn in the given order.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Dashed (for baselines).
    pub dashed: bool,
}

/// A chart of curves.
#[derive(Clone, Debug, PartialEq)]
pub struct Curves {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
    /// Points to mark with circles (e.g. the Pareto set), with their legend name.
    pub highlight: Option<(String, Vec<(f64, f64)>)>,
}

/// Tableau 10: distinct colours for up to ten curves.
const COLORS: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-12);
    (lo - pad, hi + pad)
}

/// Draws `chart` into an SVG file at `path` (800 x 520).
pub fn curves_svg(chart: &Curves) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        ensure_font()?;
        let file = "chart".to_string();
        let err = |e: String| ChartError::Draw {
            file: file.clone(),
            message: e,
        };
        let all = || {
            chart
                .curves
                .iter()
                .flat_map(|c| c.points.iter().copied())
                .chain(chart.highlight.iter().flat_map(|(_, p)| p.iter().copied()))
        };
        let (x0, x1) = range(all().map(|p| p.0));
        let (y0, y1) = range(all().map(|p| p.1));
        let root = SVGBackend::with_string(&mut out, (800, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut plot = ChartBuilder::on(&root)
            .caption(&chart.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(e.to_string()))?;
        plot.configure_mesh()
            .x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .x_label_formatter(&|x| format!("{x:.1}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (k, curve) in chart.curves.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let style = color.stroke_width(2);
            let series = if curve.dashed {
                plot.draw_series(DashedLineSeries::new(
                    curve.points.iter().copied(),
                    6,
                    4,
                    style,
                ))
            } else {
                plot.draw_series(LineSeries::new(curve.points.iter().copied(), style))
            };
            series
                .map_err(|e| err(e.to_string()))?
                .label(curve.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        if let Some((name, points)) = &chart.highlight {
            plot.draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 5, BLACK.stroke_width(2))),
            )
            .map_err(|e| err(e.to_string()))?
            .label(name.clone())
            .legend(|(x, y)| Circle::new((x + 9, y), 5, BLACK.stroke_width(2)));
        }
        plot.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lines_legend_and_highlights() {
        let dir = std::env::temp_dir().join(format!("joule-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.svg");
        let chart = Curves {
            title: "accuracy vs energy".into(),
            x_label: "energy (uJ)".into(),
            y_label: "accuracy (%)".into(),
            curves: vec![
                Curve {
                    name: "fc1".into(),
                    points: vec![(3.0, 98.0), (2.0, 97.5), (1.0, 95.0)],
                    dashed: false,
                },
                Curve {
                    name: "fc1 baseline".into(),
                    points: vec![(3.0, 98.0), (2.0, 90.0)],
                    dashed: true,
                },
            ],
            highlight: Some(("pareto".into(), vec![(1.0, 95.0)])),
        };
        curves_svg(&chart, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("fc1 baseline") && svg.contains("pareto"));
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() >= 2);
        assert!(svg.contains("<circle"));
        std::fs::remove_dir_all(dir).ok();
    }
}
