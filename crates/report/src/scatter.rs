//! Scatter charts rendered to an SVG string by [`scatter_svg`]: points per series, optionally
//! joined in x order, and an optional `y = x` diagonal (predicted against measured).

use crate::chart::ChartError;
use crate::font::ensure_font;
use crate::style::{self, by_x, draw_error, point_title, Hovers};
use plotters::prelude::*;

/// One series of points.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// The legend name.
    pub name: String,
    /// `(x, y)` in the axes' units; points with a NaN or infinite coordinate are skipped.
    pub points: Vec<(f64, f64)>,
    /// Join the points with a line, in x order.
    pub line: bool,
    /// A label per point (in `points`' order), drawn beside it and named in its hover text;
    /// empty for none. Labelled points need no legend of their own.
    pub labels: Vec<String>,
}

/// A scatter chart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scatter {
    /// What the chart shows (no file names).
    pub title: String,
    /// The x quantity and its unit, e.g. `measured latency (ms)`.
    pub x_label: String,
    /// The y quantity and its unit.
    pub y_label: String,
    /// One colour each, in palette order.
    pub series: Vec<Series>,
    /// Draw `y = x` (for predicted vs measured) over a square range.
    pub diagonal: bool,
}

/// Draws `chart` (720 x 480) and returns the SVG document. Every point carries a `<title>` with
/// its series and exact coordinates (shown on hover).
pub fn scatter_svg(chart: &Scatter) -> Result<String, ChartError> {
    ensure_font()?;
    let all = || chart.series.iter().flat_map(|s| s.points.iter().copied());
    let (mut x, mut y) = (
        style::padded_range(all().map(|p| p.0), 0.08),
        style::padded_range(all().map(|p| p.1), 0.08),
    );
    if chart.diagonal {
        let square = (x.0.min(y.0), x.1.max(y.1));
        (x, y) = (square, square);
    }
    let err = draw_error(&chart.title);
    let mut svg = String::new();
    let mut hovers = Hovers::default();
    let mut placed = Labels::default();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut c = style::xy_chart(
            &root,
            &chart.title,
            (&chart.x_label, x),
            (&chart.y_label, y),
        )?;
        if chart.diagonal {
            let grey = BLACK.mix(0.4);
            c.draw_series(LineSeries::new([(x.0, x.0), (x.1, x.1)], grey))
                .map_err(&err)?
                .label("y = x")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], grey));
        }
        for (k, s) in chart.series.iter().enumerate() {
            let color = style::color(k);
            let points = by_x(&s.points);
            if s.line {
                c.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(&err)?;
            }
            c.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(&err)?
                .label(&s.name)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            if s.labels.is_empty() {
                for &p in &points {
                    let title = point_title(&s.name, (&chart.x_label, p.0), (&chart.y_label, p.1));
                    hovers.circle(c.backend_coord(&p), 6, &title);
                }
            } else {
                let text = ("sans-serif", 11).into_font().color(&BLACK.mix(0.75));
                for (&p, label) in s.points.iter().zip(&s.labels) {
                    if !(p.0.is_finite() && p.1.is_finite()) {
                        continue;
                    }
                    let offset = placed.place(c.backend_coord(&p), label);
                    c.draw_series(std::iter::once(
                        EmptyElement::at(p) + Text::new(label.clone(), offset, text.clone()),
                    ))
                    .map_err(&err)?;
                    let title = point_title(label, (&chart.x_label, p.0), (&chart.y_label, p.1));
                    hovers.circle(c.backend_coord(&p), 6, &title);
                }
            }
        }
        let corner = emptiest_corner(all(), x, y);
        style::legend(&mut c, &chart.title, corner)?;
        root.present().map_err(&err)?;
    }
    Ok(hovers.splice(svg))
}

/// The boxes of the point labels drawn so far (pixels), so that labels of points that
/// (nearly) coincide, such as seeds that stop at the same predicted latency, are stacked
/// instead of printed over one another.
#[derive(Default)]
struct Labels(Vec<(i32, i32, i32, i32)>);

impl Labels {
    /// Line height and the width of one character of the 11-pixel label font (generous).
    const LINE: i32 = 12;
    const CHAR: i32 = 7;

    /// The offset from the point at `at` for `label`: above and to the right of it, moved
    /// up (then down) a line at a time past any label already there.
    fn place(&mut self, at: (i32, i32), label: &str) -> (i32, i32) {
        let width = Self::CHAR * label.chars().count() as i32;
        let free = |dy: i32, boxes: &[(i32, i32, i32, i32)]| {
            let (x0, y0) = (at.0 + 6, at.1 + dy);
            let (x1, y1) = (x0 + width, y0 + Self::LINE);
            boxes
                .iter()
                .all(|&(a0, b0, a1, b1)| x1 <= a0 || a1 <= x0 || y1 <= b0 || b1 <= y0)
        };
        let dy = (0..16)
            .flat_map(|k| [-13 - Self::LINE * k, -13 + Self::LINE * (k + 1)])
            .find(|&dy| free(dy, &self.0))
            .unwrap_or(-13);
        let (x0, y0) = (at.0 + 6, at.1 + dy);
        self.0.push((x0, y0, x0 + width, y0 + Self::LINE));
        (6, dy)
    }
}

/// The plot corner with the fewest points, where the legend hides the least data (the
/// upper left on a tie: where a predicted-vs-measured chart is empty).
fn emptiest_corner(
    points: impl Iterator<Item = (f64, f64)>,
    x: (f64, f64),
    y: (f64, f64),
) -> SeriesLabelPosition {
    // A legend covers about the left or right 45% and the top or bottom 35% of the plot.
    let mut counts = [0usize; 4]; // upper left, upper right, lower left, lower right
    for (px, py) in points {
        let fx = (px - x.0) / (x.1 - x.0);
        let fy = (py - y.0) / (y.1 - y.0);
        let (left, right) = (fx <= 0.45, fx >= 0.55);
        let (upper, lower) = (fy >= 0.65, fy <= 0.35);
        counts[0] += (upper && left) as usize;
        counts[1] += (upper && right) as usize;
        counts[2] += (lower && left) as usize;
        counts[3] += (lower && right) as usize;
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerLeft,
        SeriesLabelPosition::LowerRight,
    ][best]
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_points_name_themselves_on_the_chart_and_on_hover() {
        let svg = scatter_svg(&Scatter {
            title: "weights vs energy".into(),
            x_label: "weights".into(),
            y_label: "energy".into(),
            series: vec![Series {
                name: "models".into(),
                points: vec![(61e6, 16.7e9), (1.24e6, 1.6e9)],
                line: false,
                labels: vec!["alexnet".into(), "squeezenet1_0".into()],
            }],
            diagonal: false,
        })
        .unwrap();
        for label in ["alexnet", "squeezenet1_0"] {
            assert!(
                svg.contains(&format!(">\n{label}\n</text>")),
                "{label} is not drawn"
            );
            let titles: Vec<&str> = svg.split("<title>").skip(1).collect();
            assert!(
                titles.iter().any(|t| t.starts_with(label)),
                "{label} has no hover text"
            );
        }
    }

    /// Three labelled points at nearly the same place (NetAdapt seeds that stop at one
    /// predicted latency): their labels are stacked a line apart, none over another.
    #[test]
    fn labels_of_coinciding_points_do_not_overlap() {
        let svg = scatter_svg(&Scatter {
            title: "seeds".into(),
            x_label: "predicted latency (ms)".into(),
            y_label: "test accuracy (%)".into(),
            series: vec![Series {
                name: "NetAdapt".into(),
                points: vec![
                    (0.1141, 81.75),
                    (0.1141, 81.53),
                    (0.1141, 81.38),
                    (0.05, 60.0),
                ],
                line: false,
                labels: ["seed1", "seed2", "seed3", "far"]
                    .map(String::from)
                    .to_vec(),
            }],
            diagonal: false,
        })
        .unwrap();
        // The y attribute of each label's <text>.
        let y_of = |label: &str| -> i32 {
            let head = svg
                .split("<text")
                .find(|t| t.contains(&format!(">\n{label}\n</text>")))
                .unwrap_or_else(|| panic!("{label} is not drawn"));
            let y = head
                .split("y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            y.parse().unwrap()
        };
        let mut ys: Vec<i32> = ["seed1", "seed2", "seed3"].map(y_of).to_vec();
        ys.sort();
        assert!(
            ys.windows(2).all(|w| w[1] - w[0] >= Labels::LINE),
            "stacked labels overlap: {ys:?}"
        );
    }

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        // Accuracy against cost: points along the top; the lower right is empty.
        let top = [(0.0, 0.9), (0.5, 1.0), (1.0, 1.0), (0.1, 0.2)];
        let corner = emptiest_corner(top.into_iter(), (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(corner, SeriesLabelPosition::LowerRight));
        // On the diagonal, both off-diagonal corners are empty: the upper left wins the tie.
        let diagonal = [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)];
        let corner = emptiest_corner(diagonal.into_iter(), (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(corner, SeriesLabelPosition::UpperLeft));
    }
    use crate::style::texts;

    #[test]
    fn points_diagonal_legend_and_hover_titles() {
        let chart = Scatter {
            title: "latency: table prediction vs measurement".into(),
            x_label: "measured (ms)".into(),
            y_label: "predicted (ms)".into(),
            series: vec![
                Series {
                    name: "networks".into(),
                    points: vec![(0.0012, 0.0011), (0.0034, 0.0036), (0.0021, 0.002)],
                    line: false,
                    labels: Vec::new(),
                },
                Series {
                    name: "family".into(),
                    points: vec![(0.003, 0.0031), (0.001, 0.0012)],
                    line: true,
                    labels: Vec::new(),
                },
            ],
            diagonal: true,
        };
        let svg = scatter_svg(&chart).unwrap();
        let texts = texts(&svg);
        for text in [
            "networks",
            "family",
            "y = x",
            "measured (ms)",
            "predicted (ms)",
        ] {
            assert!(
                texts.iter().any(|t| t == text),
                "{text} missing from {texts:?}"
            );
        }
        assert_eq!(svg.matches("<title>").count(), 5);
        assert!(svg.contains("<title>networks\nmeasured (ms): 0.0034 (3.4 m)\npredicted (ms): 0.0036 (3.6 m)</title>"), "{svg}");
        // Milli-scale ticks in engineering notation: "1 m", "2 m", ...
        for tick in ["1 m", "2 m", "3 m"] {
            assert!(
                texts.iter().any(|t| t == tick),
                "{tick} missing from {texts:?}"
            );
        }
        // The diagonal (grey) and the family line (the second colour), left to right.
        let lines: Vec<&str> = svg
            .split("<polyline")
            .skip(1)
            .map(|l| l.split("/>").next().unwrap())
            .collect();
        // The diagonal and its legend swatch.
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("opacity=\"0.4\""))
                .count(),
            2
        );
        let family: Vec<&&str> = lines.iter().filter(|l| l.contains("#E69F00")).collect();
        assert_eq!(family.len(), 1, "{svg}");
        let xs: Vec<f64> = family[0]
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .filter_map(|p| p.split(',').next()?.parse().ok())
            .collect();
        assert!(xs.len() == 2 && xs[0] < xs[1], "{xs:?}");
    }
}
