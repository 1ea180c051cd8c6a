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
    let tags: Vec<&(String, i64)> = tags.iter().take(12).collect();
    let rows = tags.len().max(1);
    let height = (rows as u32) * 30 + 50;
    let top = tags.iter().map(|t| t.1).max().unwrap_or(0).max(4);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(24)
                .y_label_area_size(150)
                .build_cartesian_2d(0..(top + top / 8 + 1), (0..rows).into_segmented())?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(RGBColor(238, 238, 238))
                .x_labels(6)
                .y_labels(rows)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => tags.get(*i).map(|t| t.0.clone()).unwrap_or_default(),
                    _ => String::new(),
                })
                .label_style((FONT, 14))
                .draw()?;
            chart.draw_series(
                Histogram::horizontal(&chart)
                    .style(BLUE.filled())
                    .margin(4)
                    .data(tags.iter().enumerate().map(|(i, t)| (i, t.1))),
            )?;
            root.present()?;
            Ok(())
        })();
        if let Err(error) = drawn {
            tracing::warn!(error = %error, "drawing the tag chart failed");
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
    }
}
