//! The board's charts: SVG drawn on the server by plotters, inlined in the page, so they need
//! neither JavaScript nor a CDN and pass a CSP without inline script.

use chrono::{Duration, NaiveDate};
use plotters::prelude::*;

/// The line chart's own width: a phone scrolls it inside its frame rather than shrinking its
/// labels below 12 px.
const WIDTH: u32 = 900;
const HEIGHT: u32 = 280;
const FONT: &str = "sans-serif";
const GREEN: RGBColor = RGBColor(7, 193, 96);
const RED: RGBColor = RGBColor(220, 68, 55);

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
                .label_style((FONT, 15))
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
    // Marked so that admin.css keeps it at a readable width on a phone.
    svg.replacen("<svg ", "<svg class=\"wide\" ", 1)
}

/// Members per tag, as horizontal bars, largest first (at most the first 12 given). Tags with no
/// member draw no row; none at all draws nothing (the page says so in words).
pub fn tag_chart(tags: &[(String, i64)]) -> String {
    let rows: Vec<Bar> = tags
        .iter()
        .filter(|t| t.1 > 0)
        .take(12)
        .map(|(path, members)| Bar {
            label: path.clone(),
            amount: *members as f64,
            value: format!("{members} 人"),
            hover: format!("「{path}」：{members} 位粉丝"),
            colour: "#366ec8",
        })
        .collect();
    bars("各标签人数", &rows)
}

/// A campaign's WeChat counts (delivered, filtered, failed) as horizontal bars.
pub fn delivery_chart(sent: i64, filtered: i64, failed: i64) -> String {
    let row = |label: &str, n: i64, colour, why: &str| Bar {
        label: label.to_owned(),
        amount: n as f64,
        value: format!("{n} 人"),
        hover: format!("{label} {n} 人：{why}"),
        colour,
    };
    let rows = [
        row("送达", sent, "#07c160", "微信报告已送达的粉丝"),
        row("被过滤", filtered, "#e6911e", "微信按每月次数等规则拦下、未发给的粉丝"),
        row("失败", failed, "#dc4437", "微信报告发送失败的粉丝"),
    ];
    bars("群发送达情况", &rows)
}

/// Rates (0..1) of several groups side by side: one row per group and metric that has a value,
/// coloured by metric, the rate written on the bar. Nothing to draw gives an empty string.
pub fn rate_chart(groups: &[(String, Vec<Option<f64>>)], metrics: &[&str]) -> String {
    let palette = ["#07c160", "#366ec8", "#e6911e", "#dc4437"];
    let rows: Vec<Bar> = groups
        .iter()
        .flat_map(|(group, values)| {
            metrics.iter().enumerate().filter_map(move |(m, metric)| {
                let rate = values.get(m).copied().flatten()?;
                Some(Bar {
                    label: format!("{group} · {metric}"),
                    amount: rate,
                    value: format!("{:.1}%", rate * 100.0),
                    hover: format!("{group}的{metric}：{:.2}%", rate * 100.0),
                    colour: palette[m % palette.len()],
                })
            })
        })
        .collect();
    bars(&format!("各组的{}", metrics.join("、")), &rows)
}

/// One bar before layout.
struct Bar {
    label: String,
    /// What the bar's length is proportional to.
    amount: f64,
    /// Written after the bar.
    value: String,
    /// The pointer's hover text.
    hover: String,
    colour: &'static str,
}

struct BarRow {
    label: String,
    value: String,
    hover: String,
    colour: &'static str,
    percent: String,
    label_y: u32,
    bar_y: u32,
    value_y: u32,
}

#[derive(askama::Template)]
#[template(path = "admin/charts/bars.html")]
struct BarsSvg {
    caption: String,
    height: u32,
    bar_height: u32,
    rows: Vec<BarRow>,
}

/// Rows of 44 px: a 13 px label line, then an 18 px bar. The longest bar takes 78% of the width,
/// leaving room for its value on any screen from a phone up.
fn bars(caption: &str, rows: &[Bar]) -> String {
    const ROW: u32 = 44;
    const BAR: u32 = 18;
    if rows.is_empty() {
        return String::new();
    }
    let top = rows.iter().map(|r| r.amount).fold(0.0_f64, f64::max);
    let laid: Vec<BarRow> = rows
        .iter()
        .zip(0u32..)
        .map(|(r, i)| {
            let share = if top > 0.0 { (r.amount.max(0.0) / top) * 78.0 } else { 0.0 };
            let y = i * ROW;
            BarRow {
                label: r.label.clone(),
                value: r.value.clone(),
                hover: r.hover.clone(),
                colour: r.colour,
                percent: format!("{share:.2}"),
                label_y: y + 14,
                bar_y: y + 20,
                value_y: y + 20 + 14,
            }
        })
        .collect();
    let height = ROW * rows.len() as u32 + 4;
    let svg = BarsSvg { caption: caption.to_owned(), height, bar_height: BAR, rows: laid };
    askama::Template::render(&svg).unwrap_or_else(|error| {
        tracing::warn!(error = %error, "drawing {caption} failed");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let svg = flow_chart(&[(first, 3, 1)], first, first + Duration::days(6));
        assert!(svg.starts_with("<svg class=\"wide\""), "{svg}");
        assert!(svg.contains("取消关注"));
        let svg = tag_chart(&[("肤质/油性".to_owned(), 12), ("<b>".to_owned(), 1), ("空/标签".to_owned(), 0)]);
        assert!(svg.contains("肤质/油性") && svg.contains("12 人"), "values are written on the bars: {svg}");
        assert!(!svg.contains("<b>"), "labels are escaped: {svg}");
        assert!(!svg.contains("空/标签"), "a tag with no member draws no empty row: {svg}");
        assert!(svg.contains("<title>「肤质/油性」：12 位粉丝</title>"), "hover titles: {svg}");
        assert!(tag_chart(&[("空/标签".to_owned(), 0)]).is_empty());
        let svg = delivery_chart(90, 8, 2);
        assert!(svg.contains("被过滤") && svg.matches("<rect").count() == 3, "{svg}");
        let svg = rate_chart(
            &[("对照".to_owned(), vec![Some(0.12), None]), ("<i>".to_owned(), vec![Some(0.2), Some(0.01)])],
            &["点击率", "转化率"],
        );
        assert!(svg.contains("对照 · 点击率") && svg.contains("12.0%"), "{svg}");
        assert!(!svg.contains("对照 · 转化率"), "a missing rate draws no empty row: {svg}");
        assert!(!svg.contains("<i>"), "labels are escaped: {svg}");
        let sizes: Vec<u32> = svg
            .match_indices("font-size=\"")
            .map(|(i, m)| svg[i + m.len()..].split('"').next().and_then(|n| n.parse().ok()).expect("a size"))
            .collect();
        assert!(!sizes.is_empty() && sizes.iter().all(|&px| px >= 12), "labels of at least 12 px: {sizes:?}");
    }
}
