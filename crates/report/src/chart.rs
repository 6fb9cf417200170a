//! SVG charts (plotters): stacked bar charts, one panel per breakdown.
//!
//! plotters needs a font even for SVG text; joule loads a system TrueType font at run time
//! (DejaVu Sans or Liberation Sans, or the file named by `JOULE_FONT`), so no font ships
//! with joule.

use crate::font::ensure_font;
use plotters::prelude::*;
use thiserror::Error;

/// Chart errors.
#[derive(Debug, Error)]
pub enum ChartError {
    #[error("no TrueType font found (tried {tried}); set JOULE_FONT to a .ttf file")]
    NoFont { tried: String },
    #[error("{file}: {message}")]
    Draw { file: String, message: String },
}

/// One panel: bars per category, each stacked from `series` (name, one value per category).
#[derive(Clone, Debug, PartialEq)]
pub struct StackedBars {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<(String, Vec<f64>)>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
];

/// Draws the panels one above the other into an SVG file.
pub fn stacked_bars_svg(panels: &[StackedBars]) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        ensure_font()?;
        let file = "chart".to_string();
        let draw_err = |e: String| ChartError::Draw {
            file: file.clone(),
            message: e,
        };
        let width =
            (160 + 60 * panels.iter().map(|p| p.categories.len()).max().unwrap_or(1)).max(640);
        let height = 420 * panels.len().max(1);
        let root =
            SVGBackend::with_string(&mut out, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(areas) {
            let n = panel.categories.len();
            let totals: Vec<f64> = (0..n)
                .map(|i| panel.series.iter().map(|(_, v)| v[i]).sum())
                .collect();
            let top = totals.iter().cloned().fold(0.0, f64::max).max(1e-12) * 1.25; // headroom: the legend sits above the tallest bar
            let mut chart = ChartBuilder::on(&area)
                .caption(&panel.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(60)
                .y_label_area_size(80)
                // `k.into_segmented()` over `0..k` has k + 1 segments: n categories need `0..n-1`.
                .build_cartesian_2d((0..(n as i32 - 1).max(0)).into_segmented(), 0.0..top)
                .map_err(|e| draw_err(e.to_string()))?;
            let categories = panel.categories.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n.max(1))
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                        categories.get(*i as usize).cloned().unwrap_or_default()
                    }
                    SegmentValue::Last => String::new(),
                })
                .y_desc(&panel.y_label)
                .y_label_formatter(&|y| format!("{y:.2e}"))
                .draw()
                .map_err(|e| draw_err(e.to_string()))?;
            let mut base = vec![0.0; n];
            for (k, (name, values)) in panel.series.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = (0..n)
                    .map(|i| {
                        let (lo, hi) = (base[i], base[i] + values[i]);
                        let mut bar = Rectangle::new(
                            [
                                (SegmentValue::Exact(i as i32), lo),
                                (
                                    if i + 1 == n {
                                        SegmentValue::Last
                                    } else {
                                        SegmentValue::Exact(i as i32 + 1)
                                    },
                                    hi,
                                ),
                            ],
                            color.filled(),
                        );
                        bar.set_margin(0, 0, 6, 6);
                        bar
                    })
                    .collect();
                for i in 0..n {
                    base[i] += values[i];
                }
                chart
                    .draw_series(bars)
                    .map_err(|e| draw_err(e.to_string()))?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| draw_err(e.to_string()))?;
        }
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_labels() {
        let dir = std::env::temp_dir().join(format!("joule-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bars.svg");
        let panel = StackedBars {
            title: "energy by level".into(),
            y_label: "energy".into(),
            categories: vec!["conv1".into(), "fc1".into()],
            series: vec![
                ("dram".into(), vec![2.0, 7.0]),
                ("rf".into(), vec![6.0, 2.0]),
            ],
        };
        stacked_bars_svg(&[panel.clone(), panel.clone()], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        assert!(svg.contains("conv1") && svg.contains("dram"));
        assert!(svg.matches("<rect").count() >= 8);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bars_fill_the_x_range_and_one_category_draws() {
        let dir = std::env::temp_dir().join(format!("joule-chart1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("one.svg");
        let panel = StackedBars {
            title: "t".into(),
            y_label: "e".into(),
            categories: vec!["only".into()],
            series: vec![("dram".into(), vec![1.0])],
        };
        stacked_bars_svg(&[panel], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("only"));
        // Two categories: the bars fill the plot area (no empty slot after the last one):
        // first bar starts and last bar ends 6 px (the bar margin) inside the mesh lines.
        let panel = StackedBars {
            title: "t".into(),
            y_label: "e".into(),
            categories: vec!["a".into(), "b".into()],
            series: vec![("dram".into(), vec![1.0, 2.0])],
        };
        stacked_bars_svg(&[panel], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let num = |tag: &str, key: &str| -> f64 {
            let start = tag.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
            tag[start..].split('"').next().unwrap().parse().unwrap()
        };
        let bars: Vec<(f64, f64)> = svg
            .split("<rect")
            .skip(1)
            .filter(|r| r.contains("#4E79A7"))
            .map(|r| (num(r, "x"), num(r, "width")))
            .filter(|&(_, w)| w > 10.0) // not the legend swatch
            .collect();
        assert_eq!(bars.len(), 2, "{svg}");
        let lines: Vec<&str> = svg.split("<line").skip(1).collect();
        let left = lines
            .iter()
            .map(|l| num(l, "x1"))
            .fold(f64::INFINITY, f64::min);
        let right = lines.iter().map(|l| num(l, "x2")).fold(0.0, f64::max);
        assert!((bars[0].0 - 6.0 - left).abs() <= 2.0, "{bars:?} {left}");
        let end = bars[1].0 + bars[1].1;
        assert!(
            (end + 6.0 - right).abs() <= 2.0,
            "last bar ends at {end}, plot at {right}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
