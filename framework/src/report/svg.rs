//! Tiny inline-SVG charts for `report.html` (no external assets, no JavaScript).

use std::fmt::Write;

/// Series colours (colour-blind friendly).
const COLORS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_tick(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// An `<svg>` element's opening, `width` by `height`, with `title` as its label and heading.
fn svg_open(width: f64, height: f64, title: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{t}\" class=\"chart\">\
         <text x=\"4\" y=\"16\" font-weight=\"bold\">{t}</text>",
        t = esc(title)
    );
    o
}

/// A legend entry at `lx`: a swatch in series `i`'s colour, then `name`.
fn legend_entry(o: &mut String, lx: f64, i: usize, name: &str) {
    let _ = write!(
        o,
        "<rect x=\"{lx}\" y=\"24\" width=\"10\" height=\"10\" fill=\"{}\"/>\
         <text x=\"{}\" y=\"33\" font-size=\"11\">{}</text>",
        COLORS[i % COLORS.len()],
        lx + 14.0,
        esc(name)
    );
}

/// Horizontal grouped bar chart: one group per category, one bar per series.
/// `threshold` draws a dashed vertical line.
pub fn bar_chart(
    title: &str,
    unit: &str,
    series: &[&str],
    categories: &[(String, Vec<f64>)],
    threshold: Option<f64>,
) -> String {
    // Wide enough for the longest label at ~6.2 px per character of an 11 px sans-serif font.
    let longest = categories
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let label_w = (longest as f64 * 6.2 + 12.0).clamp(120.0, 420.0);
    let plot_w = 520.0;
    let bar_h = 9.0;
    let group_h = bar_h * series.len().max(1) as f64 + 8.0;
    let top = 40.0;
    let height = top + group_h * categories.len() as f64 + 40.0;
    let width = label_w + plot_w + 40.0;
    let data_max = categories
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    // A threshold far above the data would squash every bar: note it instead of drawing it.
    let off_scale = threshold.filter(|t| *t > 2.0 * data_max && data_max > 0.0);
    let threshold = threshold.filter(|_| off_scale.is_none());
    let max = nice_max(threshold.map_or(data_max, |t| t.max(data_max)));
    let x = |v: f64| label_w + plot_w * (v.max(0.0) / max).min(1.0);
    let mut o = svg_open(width, height, title);
    for (i, s) in series.iter().enumerate() {
        let lx = label_w + i as f64 * 110.0;
        legend_entry(&mut o, lx, i, s);
    }
    for t in 0..=4 {
        let v = max * f64::from(t) / 4.0;
        let tx = x(v);
        let _ = write!(
            o,
            "<line x1=\"{tx}\" y1=\"{top}\" x2=\"{tx}\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{tx}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{} {}</text>",
            height - 30.0,
            height - 16.0,
            fmt_tick(v),
            esc(unit)
        );
    }
    for (gi, (label, values)) in categories.iter().enumerate() {
        let gy = top + gi as f64 * group_h;
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            gy + group_h / 2.0 + 2.0,
            esc(label)
        );
        for (si, v) in values.iter().enumerate() {
            let y = gy + 4.0 + si as f64 * bar_h;
            let w = (x(*v) - label_w).max(0.0);
            let _ = write!(
                o,
                "<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\">\
                 <title>{}: {} {}</title></rect>",
                bar_h - 1.0,
                COLORS[si % COLORS.len()],
                esc(series.get(si).copied().unwrap_or("")),
                fmt_tick(*v),
                esc(unit)
            );
        }
    }
    if let Some(t) = off_scale {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"16\" font-size=\"10\" fill=\"#c00\" text-anchor=\"end\">\
             threshold {} {} (off scale)</text>",
            width - 4.0,
            fmt_tick(t),
            esc(unit)
        );
    }
    if let Some(t) = threshold {
        let tx = x(t);
        let _ = write!(
            o,
            "<line x1=\"{tx}\" y1=\"{top}\" x2=\"{tx}\" y2=\"{}\" stroke=\"#c00\" \
             stroke-dasharray=\"4 3\"/><text x=\"{tx}\" y=\"{}\" font-size=\"10\" fill=\"#c00\" \
             text-anchor=\"end\">\
             threshold {} {}</text>",
            height - 30.0,
            top - 2.0,
            fmt_tick(t),
            esc(unit)
        );
    }
    o.push_str("</svg>");
    o
}

/// Line chart over categorical x values; `None` points are skipped.
pub fn line_chart(
    title: &str,
    unit: &str,
    xs: &[String],
    series: &[(&str, Vec<Option<f64>>)],
) -> String {
    let (left, top, plot_w, plot_h) = (70.0, 40.0, 600.0, 240.0);
    let width = left + plot_w + 40.0;
    let height = top + plot_h + 50.0;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let max = nice_max(max);
    let n = xs.len().max(1);
    let px = |i: usize| {
        if n == 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let py = |v: f64| top + plot_h - plot_h * (v.max(0.0) / max).min(1.0);
    let mut o = svg_open(width, height, title);
    let mut lx = left;
    for (i, (name, _)) in series.iter().enumerate() {
        legend_entry(&mut o, lx, i, name);
        lx += 30.0 + 6.5 * name.chars().count() as f64;
    }
    for t in 0..=4 {
        let v = max * f64::from(t) / 4.0;
        let y = py(v);
        let _ = write!(
            o,
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{} {}</text>",
            left + plot_w,
            left - 4.0,
            y + 3.0,
            fmt_tick(v),
            esc(unit)
        );
    }
    for (i, x) in xs.iter().enumerate() {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            px(i),
            top + plot_h + 18.0,
            esc(x)
        );
    }
    for (si, (name, values)) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let pts: Vec<(f64, f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (px(i), py(v), v)))
            .collect();
        if pts.len() > 1 {
            let d: Vec<String> = pts
                .iter()
                .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = write!(
                o,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                d.join(" ")
            );
        }
        for (x, y, v) in pts {
            let _ = write!(
                o,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\">\
                 <title>{}: {} {}</title></circle>",
                esc(name),
                fmt_tick(v),
                esc(unit)
            );
        }
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_svg() {
        let b = bar_chart(
            "t<1>",
            "ms",
            &["p50", "p99"],
            &[
                ("a".into(), vec![1.0, 2.0]),
                ("b".into(), vec![3.0, f64::NAN]),
            ],
            Some(5.0),
        );
        assert!(b.starts_with("<svg") && b.ends_with("</svg>"));
        assert!(b.contains("t&lt;1&gt;"));
        assert!(b.contains("threshold 5 ms"));
        let off = bar_chart(
            "t",
            "ms",
            &["p99"],
            &[("a".into(), vec![1.0])],
            Some(1000.0),
        );
        assert!(off.contains("threshold 1000 ms (off scale)"));
        let l = line_chart(
            "l",
            "ms",
            &["10%".into(), "50%".into()],
            &[("p50", vec![Some(1.0), None])],
        );
        assert!(l.contains("<circle") && !l.contains("<polyline"));
        assert_eq!(nice_max(7.3), 10.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(1800.0), 2000.0);
    }
}
