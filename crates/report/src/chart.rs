//! Stacked bar charts, one panel per breakdown (energy by level, by data type), rendered to an
//! SVG string by [`stacked_bars_svg`]; linear or logarithmic y axis; [`ChartError`], the error of
//! every chart kind.

use crate::font::ensure_font;
use crate::notation::TickFormat;
use crate::style::{self, draw_error, exact, Hovers, FONT};
use plotters::coord::ranged1d::{SegmentedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

/// Why a chart could not be drawn.
#[derive(Debug, Error)]
pub enum ChartError {
    /// The font that measures chart text could not be loaded (`origin` names it: the bundled
    /// DejaVu Sans or the file in `JOULE_FONT`).
    #[error("{origin}: cannot measure chart text with it: {message}")]
    Font {
        /// `the bundled DejaVu Sans` or `JOULE_FONT=<path>`.
        origin: String,
        message: String,
    },
    /// A series does not fit its chart (wrong number of values, a value a bar cannot show).
    #[error("chart {title:?}, series {series:?}: {problem}")]
    Series {
        title: String,
        series: String,
        problem: String,
    },
    /// plotters failed while drawing the chart titled `title`.
    #[error("chart {title:?}: cannot draw")]
    Draw {
        title: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One panel: a bar per category, each stacked from `series` (name, one value per category).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackedBars {
    /// What the panel shows (no file names: the caller decides where the chart goes).
    pub title: String,
    /// The quantity and its unit, e.g. `energy (pJ)`.
    pub y_label: String,
    /// One bar each, left to right (layers, dataflows).
    pub categories: Vec<String>,
    /// Bottom to top; every series has one finite, non-negative value per category.
    pub series: Vec<(String, Vec<f64>)>,
    /// Logarithmic y axis (decades), for breakdowns whose parts differ by orders of magnitude.
    pub log_y: bool,
}

impl StackedBars {
    fn check(&self) -> Result<(), ChartError> {
        for (name, values) in &self.series {
            let problem = if values.len() != self.categories.len() {
                Some(format!(
                    "{} values for {} categories",
                    values.len(),
                    self.categories.len()
                ))
            } else {
                values
                    .iter()
                    .zip(&self.categories)
                    .find(|(v, _)| !(v.is_finite() && **v >= 0.0))
                    .map(|(v, c)| format!("{c}: {v} cannot be stacked"))
            };
            if let Some(problem) = problem {
                return Err(ChartError::Series {
                    title: self.title.clone(),
                    series: name.clone(),
                    problem,
                });
            }
        }
        Ok(())
    }

    fn totals(&self) -> Vec<f64> {
        (0..self.categories.len())
            .map(|i| self.series.iter().map(|(_, v)| v[i]).sum())
            .collect()
    }

    /// The log axis: from the decade below the smallest non-zero part (so every part shows) to
    /// a little above the tallest bar, at least one decade.
    fn log_range(&self) -> (f64, f64) {
        let top = self.totals().iter().copied().fold(0.0, f64::max);
        let smallest = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if top <= 0.0 {
            return (1.0, 10.0);
        }
        // Parts a billion times smaller than the tallest bar would flatten everything else.
        let low = 10f64.powf(smallest.max(top * 1e-9).log10().floor());
        let span = (top / low).log10();
        (low, (top * 10f64.powf(0.05 * span)).max(low * 10.0))
    }
}

/// The width of the legend of panels with these series names, in pixels: swatch, gap, text, padding.
fn legend_width(panels: &[StackedBars]) -> u32 {
    let font = (FONT, style::LEGEND_SIZE).into_font();
    let text = panels
        .iter()
        .flat_map(|p| p.series.iter())
        .map(|(name, _)| {
            font.box_size(name)
                .map_or(8 * name.len() as u32, |(w, _)| w)
        })
        .max()
        .unwrap_or(0);
    text + 50
}

/// Draws the panels one above the other and returns the SVG document. Each bar segment carries
/// a `<title>` with its category, series and exact value (shown on hover).
/// Horizontal pixels a bar (category) gets.
const BAR_PIXELS: usize = 60;

pub fn stacked_bars_svg(panels: &[StackedBars]) -> Result<String, ChartError> {
    ensure_font()?;
    for panel in panels {
        panel.check()?;
    }
    // The legend goes to the right of the plot, where it cannot cover a bar.
    let legend = legend_width(panels);
    // Labels wider than a bar's 60 pixels (names such as `block1/se/fc1` ran into each
    // other) are turned upright, below the axis, with room for the longest; widening the
    // bars instead made a 21-layer chart so wide that a page scaled its text unreadable.
    let tick = (FONT, style::TICK_SIZE).into_font();
    let label = panels
        .iter()
        .flat_map(|p| p.categories.iter())
        .map(|c| tick.box_size(c).map_or(8 * c.len() as u32, |(w, _)| w))
        .max()
        .unwrap_or(0);
    let upright = label + 8 > BAR_PIXELS as u32;
    let label_area = if upright { label + 16 } else { 40 };
    let bars = panels.iter().map(|p| p.categories.len()).max().unwrap_or(1);
    let plot = (160 + BAR_PIXELS * bars).max(640);
    let width = plot as u32 + legend;
    let height = (380 + label_area as usize) * panels.len().max(1);
    let first = panels.first().map_or("", |p| p.title.as_str());
    let mut svg = String::new();
    let mut hovers = Hovers::default();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error(first))?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(areas) {
            let n = panel.categories.len();
            let err = draw_error(&panel.title);
            let mut builder = ChartBuilder::on(&area);
            builder
                .caption(&panel.title, (FONT, style::title_size(&panel.title, width)))
                .margin(12)
                .margin_right(12 + legend)
                .x_label_area_size(label_area)
                .y_label_area_size(80);
            // `k.into_segmented()` over `0..k` has k + 1 segments: n categories need `0..n-1`.
            let x = (0..(n as i32 - 1).max(0)).into_segmented();
            let corner = if panel.log_y {
                let (low, high) = panel.log_range();
                let mut chart = builder
                    .build_cartesian_2d(x, (low..high).log_scale())
                    .map_err(&err)?;
                draw_panel(
                    &mut chart,
                    panel,
                    TickFormat::log(low, high),
                    low,
                    upright,
                    &mut hovers,
                )?
            } else {
                let top = panel.totals().iter().copied().fold(0.0, f64::max);
                let top = if top > 0.0 { top * 1.05 } else { 1.0 };
                let mut chart = builder.build_cartesian_2d(x, 0.0..top).map_err(&err)?;
                let ticks = TickFormat::linear(0.0, top, 10);
                draw_panel(&mut chart, panel, ticks, 0.0, upright, &mut hovers)?
            };
            let (corner, anchors) = corner;
            if upright {
                // Hanging down from the axis, the text's start at the top.
                let base = area.get_base_pixel();
                let style = (FONT, style::TICK_SIZE)
                    .into_font()
                    .transform(FontTransform::Rotate90)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center));
                for (name, (x, y)) in panel.categories.iter().zip(anchors) {
                    let at = (x - base.0, y - base.1 + 6);
                    area.draw(&Text::new(name.clone(), at, style.clone()))
                        .map_err(&err)?;
                }
            }
            draw_legend(&area, corner, panel)?;
        }
        root.present().map_err(draw_error(first))?;
    }
    Ok(hovers.splice(svg))
}

/// What [`draw_panel`] leaves for the caller: the plot's top-right corner and, per category,
/// where its label starts (under the middle of its bar, on the axis), in backend pixels.
type Drawn = ((i32, i32), Vec<(i32, i32)>);

type BarChart<'a, 'b, Y> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordi32>, Y>>;

/// Mesh, bars and hover titles of one panel; `floor` is the bottom of the y axis. Returns the
/// top-right corner of the plot, in backend pixels.
fn draw_panel<'a, 'b: 'a, Y>(
    chart: &mut BarChart<'a, 'b, Y>,
    panel: &StackedBars,
    ticks: TickFormat,
    floor: f64,
    upright: bool,
    hovers: &mut Hovers,
) -> Result<Drawn, ChartError>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = draw_error(&panel.title);
    let n = panel.categories.len();
    let categories = &panel.categories;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.15))
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            // Upright labels are drawn by the caller (the mesh centres rotated text on the
            // tick, so half of it stood above the axis).
            _ if upright => String::new(),
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                categories.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_desc(&panel.y_label)
        .y_label_formatter(&|y| ticks.label(*y))
        .label_style((FONT, style::TICK_SIZE))
        .axis_desc_style((FONT, style::LABEL_SIZE))
        .draw()
        .map_err(&err)?;
    let totals = panel.totals();
    let mut base = vec![0.0f64; n];
    let left = |i: usize| SegmentValue::Exact(i as i32);
    let right = |i: usize| {
        if i + 1 == n {
            SegmentValue::Last
        } else {
            SegmentValue::Exact(i as i32 + 1)
        }
    };
    for (k, (name, values)) in panel.series.iter().enumerate() {
        let color = style::color(k);
        let mut bars = Vec::new();
        for i in 0..n {
            let (lo, hi) = (base[i].max(floor), base[i] + values[i]);
            base[i] = hi;
            if hi <= lo {
                continue; // zero, or below the bottom of a log axis
            }
            let mut bar = Rectangle::new([(left(i), lo), (right(i), hi)], color.filled());
            bar.set_margin(0, 0, 6, 6);
            bars.push(bar);
            let (a, b) = (
                chart.backend_coord(&(left(i), lo)),
                chart.backend_coord(&(right(i), hi)),
            );
            let share = if totals[i] > 0.0 {
                100.0 * values[i] / totals[i]
            } else {
                0.0
            };
            hovers.rect(
                (a.0 + 6, a.1),
                (b.0 - 6, b.1),
                &format!(
                    "{} · {name}\n{}: {}\n{share:.1}% of the bar ({})",
                    panel.categories[i],
                    panel.y_label,
                    exact(values[i]),
                    exact(totals[i]),
                ),
            );
        }
        chart.draw_series(bars).map_err(&err)?;
    }
    let plot = chart.plotting_area();
    let (x, y) = plot.get_base_pixel();
    // Where each category's label starts: under the middle of its bar, on the axis.
    let anchors = (0..n)
        .map(|i| {
            let (a, b) = (
                chart.backend_coord(&(left(i), floor)),
                chart.backend_coord(&(right(i), floor)),
            );
            ((a.0 + b.0) / 2, a.1)
        })
        .collect();
    Ok(((x + plot.dim_in_pixel().0 as i32, y), anchors))
}

/// The legend, right of the plot whose top-right corner is `corner` (backend pixels), in the
/// order the segments stack: the top series first. Drawn on the panel, as plotters' own legend
/// cannot leave the plotting area.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    corner: (i32, i32),
    panel: &StackedBars,
) -> Result<(), ChartError> {
    let err = draw_error(&panel.title);
    let base = area.get_base_pixel();
    let (x, y) = (corner.0 - base.0 + 16, corner.1 - base.1 + 4);
    let text = TextStyle::from((FONT, style::LEGEND_SIZE).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (row, (k, (name, _))) in panel.series.iter().enumerate().rev().enumerate() {
        let y = y + 10 + 22 * row as i32;
        area.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            style::color(k).filled(),
        ))
        .map_err(&err)?;
        area.draw(&Text::new(name.as_str(), (x + 20, y), text.clone()))
            .map_err(&err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::style::texts;

    fn panel(series: Vec<(&str, Vec<f64>)>, categories: &[&str]) -> StackedBars {
        StackedBars {
            title: "energy by level".into(),
            y_label: "energy (pJ)".into(),
            categories: categories.iter().map(|c| c.to_string()).collect(),
            series: series
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            log_y: false,
        }
    }

    #[test]
    fn titles_legend_and_engineering_ticks() {
        let p = panel(
            vec![
                ("DRAM", vec![2.0e6, 7.5e6]),
                ("RF", vec![6.0e6, 1234567.891]),
            ],
            &["conv1", "fc1"],
        );
        let svg = stacked_bars_svg(&[p.clone(), p]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        let texts = texts(&svg);
        for name in [
            "conv1",
            "fc1",
            "DRAM",
            "RF",
            "energy by level",
            "energy (pJ)",
        ] {
            assert!(
                texts.iter().any(|t| t == name),
                "{name} missing from {texts:?}"
            );
        }
        // One title per segment, two panels: the exact value, the share, the bar's total.
        assert_eq!(svg.matches("<title>").count(), 8, "{svg}");
        assert!(svg.contains(
            "<title>fc1 · RF\nenergy (pJ): 1234567.891 (1.23 M)\n14.1% of the bar (8734567.891 (8.73 M))</title>"
        ), "{svg}");
        assert!(svg.contains("<title>conv1 · DRAM\nenergy (pJ): 2000000 (2 M)\n25.0% of the bar"));
        // Tick labels in engineering notation ("2 M", "4 M", ...), none in 1.00e6 style.
        assert!(
            texts.iter().any(|t| t == "2 M") && texts.iter().any(|t| t == "8 M"),
            "{texts:?}"
        );
        assert!(
            !texts
                .iter()
                .any(|t| t.contains("e6") || t.contains("000000")),
            "{texts:?}"
        );
    }

    #[test]
    fn log_scale_ticks_span_decades() {
        let mut p = panel(
            vec![("MAC", vec![3.0, 40.0]), ("DRAM", vec![2.0e5, 9.0e5])],
            &["conv1", "conv2"],
        );
        p.log_y = true;
        let svg = stacked_bars_svg(&[p]).unwrap();
        let texts = texts(&svg);
        // From the smallest part (3: decade 1) to the tallest bar (9e5), in decades.
        for tick in ["1", "10", "100", "1 k", "10 k", "100 k", "1 M"] {
            assert!(
                texts.iter().any(|t| t == tick),
                "{tick} missing from {texts:?}"
            );
        }
        // The tiny MAC part is still a visible, hoverable segment.
        assert!(
            svg.contains("<title>conv1 · MAC\nenergy (pJ): 3\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<title>").count(), 4);
    }

    /// Long layer names: drawn upright (they ran into each other at 60 pixels a bar), with
    /// the label area tall enough for the longest, so the chart keeps its width; short
    /// names stay level.
    #[test]
    fn long_category_labels_are_upright() {
        let names: Vec<String> = (1..=12).map(|k| format!("block{k}/se/fc1")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let element = |svg: &str, name: &str| -> String {
            let at = svg
                .find(&format!(">\n{name}\n</text>"))
                .unwrap_or_else(|| panic!("{name} is not drawn"));
            svg[svg[..at].rfind("<text").unwrap()..at].to_string()
        };
        let svg = stacked_bars_svg(&[panel(vec![("saved", vec![1.0; 12])], &names)]).unwrap();
        for name in &names {
            let e = element(&svg, name);
            assert!(e.contains("rotate(90"), "{name} is not upright: {e}");
        }
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|w| w.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        let legend = legend_width(&[panel(vec![("saved", vec![1.0; 12])], &names)]);
        assert_eq!(width, (160 + 60 * 12) as u32 + legend);
        let level =
            stacked_bars_svg(&[panel(vec![("saved", vec![1.0; 2])], &["conv1", "fc1"])]).unwrap();
        assert!(!element(&level, "conv1").contains("rotate("));
    }

    #[test]
    fn bad_series_are_errors_not_panics() {
        let p = panel(vec![("DRAM", vec![1.0])], &["a", "b"]);
        let e = stacked_bars_svg(&[p]).unwrap_err().to_string();
        assert!(e.contains("\"DRAM\": 1 values for 2 categories"), "{e}");
        let p = panel(vec![("DRAM", vec![1.0, f64::NAN])], &["a", "b"]);
        let e = stacked_bars_svg(&[p]).unwrap_err().to_string();
        assert!(e.contains("b: NaN cannot be stacked"), "{e}");
    }

    #[test]
    fn bars_fill_the_x_range_and_one_category_draws() {
        let svg = stacked_bars_svg(&[panel(vec![("dram", vec![1.0])], &["only"])]).unwrap();
        assert!(texts(&svg).iter().any(|t| t == "only"));
        // Two categories: the bars fill the plot area (no empty slot after the last one):
        // first bar starts and last bar ends 6 px (the bar margin) inside the mesh lines.
        let svg = stacked_bars_svg(&[panel(vec![("dram", vec![1.0, 2.0])], &["a", "b"])]).unwrap();
        let num = |tag: &str, key: &str| -> f64 {
            let start = tag.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
            tag[start..].split('"').next().unwrap().parse().unwrap()
        };
        let bars: Vec<(f64, f64)> = svg
            .split("<rect")
            .skip(1)
            .filter(|r| r.contains("#0072B2"))
            .map(|r| (num(r, "x"), num(r, "width")))
            .filter(|&(_, w)| w > 20.0) // not the legend swatch
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
        // The hover rectangles cover the bars.
        let hover: Vec<(f64, f64)> = svg
            .split("<rect")
            .skip(1)
            .filter(|r| r.contains("<title>"))
            .map(|r| (num(r, "x"), num(r, "width")))
            .collect();
        for (bar, hover) in bars.iter().zip(&hover) {
            assert!(
                (bar.0 - hover.0).abs() <= 1.0 && (bar.1 - hover.1).abs() <= 2.0,
                "{bars:?} {hover:?}"
            );
        }
    }
}
