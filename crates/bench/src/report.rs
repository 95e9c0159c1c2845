//! Benchmark results as files: CSV tables through `csv`, SVG line charts through `plotters` (its SVG backend
//! only: text goes out as SVG `<text>` for the viewer's fonts, so no font files or C libraries are needed).

use plotters::prelude::*;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The CSV writer failed.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The chart could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
}

fn plot_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// A CSV table: the header, then one record per row (`\n`-terminated, fields quoted where RFC 4180 needs it).
pub fn csv_table<R, F>(header: &[&str], rows: R) -> Result<Vec<u8>, ReportError>
where
    R: IntoIterator<Item = F>,
    F: IntoIterator,
    F::Item: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.write_record(row)?;
    }
    w.into_inner().map_err(|e| ReportError::Csv(e.into_error().into()))
}

/// How the points of a series are marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A filled circle.
    Circle,
    /// A filled square.
    Square,
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its legend.
    pub label: String,
    /// (x, y) in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Line, marker and legend colour (RGB).
    pub color: (u8, u8, u8),
    /// A dashed line (else solid).
    pub dashed: bool,
    /// The points' marker.
    pub marker: Marker,
}

/// A line chart: y from zero to 15% above the highest point, x over the points' range and 4% beyond.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Above the chart.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

impl LineChart {
    /// Width and height in pixels.
    pub const SIZE: (u32, u32) = (640, 400);

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> Result<String, ReportError> {
        let points = || self.series.iter().flat_map(|s| s.points.iter().copied());
        let (xmin, xmax) =
            points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| (lo.min(x), hi.max(x)));
        let (xmin, xmax) = match (xmin.is_finite(), xmax > xmin) {
            (false, _) => (0.0, 1.0),
            (true, false) => (xmin - 1.0, xmax + 1.0),
            (true, true) => (xmin, xmax),
        };
        // A margin, so that the first and last markers are whole.
        let pad = (xmax - xmin) * 0.04;
        let (xmin, xmax) = (xmin - pad, xmax + pad);
        let ymax = points().map(|(_, y)| y).fold(0.0, f64::max) * 1.15;
        let ymax = if ymax > 0.0 && ymax.is_finite() { ymax } else { 1.0 };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, Self::SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(xmin..xmax, 0.0..ymax)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()
                .map_err(plot_error)?;
            for s in &self.series {
                let color = RGBColor(s.color.0, s.color.1, s.color.2);
                let line = color.stroke_width(2);
                let pts = s.points.iter().copied();
                let drawn = if s.dashed {
                    chart.draw_series(DashedLineSeries::new(pts, 5, 4, line))
                } else {
                    chart.draw_series(LineSeries::new(pts, line))
                };
                drawn
                    .map_err(plot_error)?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
                match s.marker {
                    Marker::Circle => {
                        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    }
                    Marker::Square => {
                        chart.draw_series(s.points.iter().map(|&p| {
                            EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], color.filled())
                        }))
                    }
                }
                .map_err(plot_error)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_error)?;
            root.present().map_err(plot_error)?;
        }
        Ok(svg)
    }
}

#[cfg(test)]
mod tests;
