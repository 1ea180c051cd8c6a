//! The board's charts: SVG drawn on the server by plotters, inlined in the page, so they need
//! neither JavaScript nor a CDN and pass a CSP without inline script.

use chrono::{Duration, NaiveDate};
use plotters::prelude::*;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 280;
const FONT: &str = "sans-serif";
const GREEN: RGBColor = RGBColor(7, 193, 96);
const RED: RGBColor = RGBColor(220, 68, 55);
const BLUE: RGBColor = RGBColor(54, 110, 200);
const ORANGE: RGBColor = RGBColor(230, 145, 30);

/// Subscribes and unsubscribes per day, from `first` to `last`; missing days count zero.
pub fn flow_chart(days: &[(NaiveDate, i64, i64)], first: NaiveDate, last: NaiveDate) -> String {
    let span = (last - first).num_days().max(1);
    let value =
        |day: NaiveDate, pick: fn(&(NaiveDate, i64, i64)) -> i64| days.iter().find(|d| d.0 == day).map_or(0, pick);
    let points = |pick: fn(&(NaiveDate, i64, i64)) -> i64| -> Vec<(i64, i64)> {
        (0..=span).map(|i| (i, value(first + Duration::days(i), pick))).collect()
    };
    let subscribes = points(|d| d.1);
    let unsubscribes = points(|d| d.2);
    let top = subscribes.iter().chain(&unsubscribes).map(|p| p.1).max().unwrap_or(0).max(4);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(40)
                .build_cartesian_2d(0..span, 0..(top + top / 5))?;
            chart
                .configure_mesh()
                .light_line_style(RGBColor(238, 238, 238))
                .x_labels(8)
                .y_labels(5)
                .x_label_formatter(&|i| (first + Duration::days(*i)).format("%m-%d").to_string())
                .label_style((FONT, 14))
                .draw()?;
            chart
                .draw_series(LineSeries::new(subscribes.clone(), GREEN.stroke_width(2)))?
                .label("关注")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREEN.stroke_width(2)));
            chart
                .draw_series(LineSeries::new(unsubscribes.clone(), RED.stroke_width(2)))?
                .label("取消关注")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .label_font((FONT, 15))
                .draw()?;
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(error = %error, "drawing the follower chart failed");
        }
    }
    svg
}

/// Members per tag, as horizontal bars, largest first (at most the first 12 given).
pub fn tag_chart(tags: &[(String, i64)]) -> String {
    count_bars(&tags.iter().take(12).map(|t| (t.0.clone(), t.1, BLUE)).collect::<Vec<_>>(), "the tag chart")
}

/// A campaign's WeChat counts (delivered, filtered, failed) as horizontal bars.
pub fn delivery_chart(sent: i64, filtered: i64, failed: i64) -> String {
    let rows =
        [("送达".to_owned(), sent, GREEN), ("被过滤".to_owned(), filtered, ORANGE), ("失败".to_owned(), failed, RED)];
    count_bars(&rows, "the delivery chart")
}

/// Labelled counts as horizontal bars, one colour per bar, in the order given.
fn count_bars(rows: &[(String, i64, RGBColor)], what: &str) -> String {
    let n = rows.len().max(1);
    let height = (n as u32) * 30 + 50;
    let top = rows.iter().map(|t| t.1).max().unwrap_or(0).max(4);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(24)
                .y_label_area_size(150)
                .build_cartesian_2d(0..(top + top / 8 + 1), (0..n).into_segmented())?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(RGBColor(238, 238, 238))
                .x_labels(6)
                .y_labels(n)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => rows.get(*i).map(|t| t.0.clone()).unwrap_or_default(),
                    _ => String::new(),
                })
                .label_style((FONT, 14))
                .draw()?;
            // One series per colour: plotters styles a histogram as a whole.
            for (i, (_, value, colour)) in rows.iter().enumerate() {
                chart.draw_series(
                    Histogram::horizontal(&chart).style(colour.filled()).margin(4).data(std::iter::once((i, *value))),
                )?;
            }
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(error = %error, "drawing {what} failed");
        }
    }
    svg
}

/// Rates (0..1) of several groups side by side: one row per group and metric, coloured by
/// metric with a legend, so variants or strategies compare at a glance. `None` draws no bar.
pub fn rate_chart(groups: &[(String, Vec<Option<f64>>)], metrics: &[&str]) -> String {
    let palette = [GREEN, BLUE, ORANGE, RED];
    let per = metrics.len().max(1);
    let rows: Vec<(String, usize, Option<f64>)> = groups
        .iter()
        .flat_map(|(group, values)| {
            metrics.iter().enumerate().map(move |(m, metric)| {
                let value = values.get(m).copied().flatten();
                let label = match value {
                    Some(v) => format!("{group} · {metric} {:.1}%", v * 100.0),
                    None => format!("{group} · {metric} —"),
                };
                (label, m, value)
            })
        })
        .collect();
    let n = rows.len().max(1);
    let height = (n as u32) * 24 + 70;
    let top = rows.iter().filter_map(|r| r.2).fold(0.0_f64, f64::max).max(0.05) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(24)
                .y_label_area_size(260)
                .build_cartesian_2d(0.0..top, (0..n).into_segmented())?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(RGBColor(238, 238, 238))
                .x_labels(6)
                .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
                .y_labels(n)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => rows.get(*i).map(|r| r.0.clone()).unwrap_or_default(),
                    _ => String::new(),
                })
                .label_style((FONT, 13))
                .draw()?;
            for (m, metric) in metrics.iter().enumerate() {
                let colour = palette[m % palette.len()];
                let bars = rows.iter().enumerate().filter(|(_, r)| r.1 == m).filter_map(|(i, r)| r.2.map(|v| (i, v)));
                chart
                    .draw_series(Histogram::horizontal(&chart).style(colour.filled()).margin(3).data(bars))?
                    .label(*metric)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
            }
            if per > 1 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.9))
                    .border_style(RGBColor(200, 200, 200))
                    .label_font((FONT, 14))
                    .draw()?;
            }
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(error = %error, "drawing a rate chart failed");
        }
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let svg = flow_chart(&[(first, 3, 1)], first, first + Duration::days(6));
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("取消关注"));
        let svg = tag_chart(&[("肤质/油性".to_owned(), 12), ("<b>".to_owned(), 1)]);
        assert!(svg.contains("肤质/油性"));
        assert!(!svg.contains("<b>"), "labels are escaped: {svg}");
        let svg = delivery_chart(90, 8, 2);
        assert!(svg.contains("被过滤") && svg.matches("<rect").count() >= 3, "{svg}");
        let svg = rate_chart(
            &[("对照".to_owned(), vec![Some(0.12), None]), ("<i>".to_owned(), vec![Some(0.2), Some(0.01)])],
            &["点击率", "转化率"],
        );
        assert!(svg.contains("对照 · 点击率 12.0%") && svg.contains("对照 · 转化率 —"), "{svg}");
        assert!(!svg.contains("<i>"), "labels are escaped: {svg}");
    }
}
