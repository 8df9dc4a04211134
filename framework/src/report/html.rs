//! `report.html`: a self-contained page (inline CSS and SVG, no scripts, no external assets)
//! with the verdict, the SLO table and plots: pod startup latency per transition, API call
//! latency per (verb, resource), latency by cluster load and step durations.

use super::{
    CLIENT_LATENCY_HEADERS, LOAD_LATENCY_HEADERS, View, client_latency_cells, duration_secs,
    opt_ms, svg,
};
use crate::measurement::Verdict;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Warn => "warn",
        Verdict::None => "none",
    }
}

fn data_f64(item: &serde_json::Value, key: &str) -> f64 {
    item["data"][key].as_f64().unwrap_or(f64::NAN)
}

fn label<'a>(item: &'a serde_json::Value, key: &str) -> &'a str {
    item["labels"][key].as_str().unwrap_or("")
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:left;font-size:13px}th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:bold}\
.fail{color:#c00;font-weight:bold}.warn{color:#b35c00;font-weight:bold}.banner{padding:.8em;\
border:2px solid #c00;background:#fee;font-size:1.2em;font-weight:bold;margin:1em 0}\
.chart{display:block;margin:1em 0;font-family:system-ui,sans-serif}code{font-size:12px}";

/// Renders the HTML report.
pub(crate) fn render(v: &View<'_>) -> String {
    let r = v.record;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>cl2 report: {}\
         </title><style>{CSS}</style></head><body><h1>cl2 report: {}</h1>",
        esc(&r.test_name),
        esc(&r.test_name)
    );
    if r.partial {
        o.push_str(
            "<div class=\"banner\">PARTIAL RUN — interrupted or stopped early; numbers cover \
             only what ran.</div>",
        );
    }
    if !v.validity.is_empty() {
        o.push_str("<div class=\"banner\">RUN INVALID — cl2 itself was the bottleneck:<ul>");
        for i in &v.validity {
            let _ = write!(o, "<li>{}</li>", esc(i));
        }
        o.push_str("</ul></div>");
    }
    let _ = write!(
        o,
        "<p>Verdict: <span class=\"{}\">{}</span></p><table>\
         <tr><th>Config</th><td><code>{}</code> (sha256 <code>{}</code>)</td></tr>\
         <tr><th>Cluster</th><td>{}</td></tr><tr><th>Server version</th><td>{}</td></tr>\
         <tr><th>cl2 version</th><td>{}</td></tr><tr><th>Started</th><td>{}</td></tr>\
         <tr><th>Duration</th><td>{:.1}s</td></tr></table>",
        verdict_class(v.verdict),
        v.verdict.label(),
        esc(&v.meta.config_path),
        esc(&v.meta.config_hash),
        esc(&v.meta.cluster),
        esc(&v.meta.server_version),
        esc(&v.meta.tool_version),
        r.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_secs(r)
    );
    if !v.reasons.is_empty() {
        o.push_str("<h2>Failures</h2><ul>");
        for reason in &v.reasons {
            let _ = write!(o, "<li>{}</li>", esc(reason));
        }
        o.push_str("</ul>");
    }

    o.push_str("<h2>SLOs</h2><table><tr><th>Measurement</th><th>Identifier</th><th>Key numbers</th><th>SLO</th><th>Verdict</th><th>Violations / errors</th></tr>");
    for row in &v.rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&row.measurement),
            esc(&row.identifier),
            esc(&row.numbers),
            esc(&row.slo),
            verdict_class(row.verdict),
            row.verdict.label(),
            row.problems
                .iter()
                .map(|p| esc(p))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    o.push_str("</table>");

    if !v.load.is_empty() {
        o.push_str("<h2>Latency by cluster load</h2>");
        let xs: Vec<String> = v.load.iter().map(|l| l.level.clone()).collect();
        let col = |f: fn(&super::LoadRow) -> Option<f64>| v.load.iter().map(f).collect::<Vec<_>>();
        o.push_str(&svg::line_chart(
            "Pod startup latency by cluster load",
            "ms",
            &xs,
            &[
                ("p10", col(|l| l.pod_startup_p10)),
                ("p50", col(|l| l.pod_startup_p50)),
                ("p90", col(|l| l.pod_startup_p90)),
                ("p99", col(|l| l.pod_startup_p99)),
            ],
        ));
        o.push_str(&svg::line_chart(
            "API call latency by cluster load",
            "ms",
            &xs,
            &[
                ("single-object p10", col(|l| l.api_p10)),
                ("single-object p50", col(|l| l.api_p50)),
                ("single-object p90", col(|l| l.api_p90)),
                ("single-object p99", col(|l| l.api_p99)),
                ("worst call p99", col(|l| l.api_worst_p99)),
            ],
        ));
        o.push_str("<table><tr><th>Load</th>");
        for h in LOAD_LATENCY_HEADERS {
            let _ = write!(o, "<th>{h}</th>");
        }
        o.push_str("<th>API worst p99</th></tr>");
        for l in &v.load {
            let _ = write!(o, "<tr><td>{}</td>", esc(&l.level));
            for ms in l.latencies() {
                let _ = write!(o, "<td>{}</td>", opt_ms(ms));
            }
            let _ = write!(
                o,
                "<td>{} {}</td></tr>",
                opt_ms(l.api_worst_p99),
                esc(l.api_worst_call.as_deref().unwrap_or(""))
            );
        }
        o.push_str("</table>");
    }

    let mut charts = String::new();
    for res in v.results {
        for s in &res.summaries {
            let Some(items) = s.content.get("dataItems").and_then(|d| d.as_array()) else {
                continue;
            };
            if s.name.starts_with("PodStartupLatency_") {
                let cats: Vec<(String, Vec<f64>)> = items
                    .iter()
                    .map(|i| {
                        (
                            label(i, "Metric").to_string(),
                            vec![
                                data_f64(i, "Perc50"),
                                data_f64(i, "Perc90"),
                                data_f64(i, "Perc99"),
                            ],
                        )
                    })
                    .collect();
                if !cats.is_empty() {
                    charts.push_str(&svg::bar_chart(
                        &format!("{} — latency per transition", s.name),
                        "ms",
                        &["p50", "p90", "p99"],
                        &cats,
                        None,
                    ));
                }
            } else if items.first().is_some_and(|i| !label(i, "Verb").is_empty()) {
                let mut cats: Vec<(String, Vec<f64>)> = items
                    .iter()
                    .map(|i| {
                        let sub = label(i, "Subresource");
                        (
                            format!(
                                "{} {}{} ({})",
                                label(i, "Verb"),
                                label(i, "Resource"),
                                if sub.is_empty() {
                                    String::new()
                                } else {
                                    format!("/{sub}")
                                },
                                label(i, "Scope")
                            ),
                            vec![data_f64(i, "Perc50"), data_f64(i, "Perc99")],
                        )
                    })
                    .collect();
                cats.sort_by(|a, b| b.1[1].total_cmp(&a.1[1]));
                cats.truncate(25);
                charts.push_str(&svg::bar_chart(
                    &format!("{} — API call latency (top {} by p99)", s.name, cats.len()),
                    "ms",
                    &["p50", "p99"],
                    &cats,
                    Some(1000.0),
                ));
            }
        }
    }
    if !charts.is_empty() {
        o.push_str("<h2>Plots</h2>");
        o.push_str(&charts);
    }

    o.push_str("<h2>Steps</h2>");
    if !r.steps.is_empty() {
        let cats: Vec<(String, Vec<f64>)> = r
            .steps
            .iter()
            .map(|s| (s.name.clone(), vec![s.duration.as_secs_f64()]))
            .collect();
        o.push_str(&svg::bar_chart(
            "Step durations",
            "s",
            &["duration"],
            &cats,
            None,
        ));
    }
    o.push_str("<table><tr><th>Step</th><th>Duration</th><th>Phase</th><th>Tuning set</th><th>Requested rate</th><th>Achieved rate</th><th>Actions</th><th>Failed</th><th>Errors</th></tr>");
    for s in &r.steps {
        let errs = s
            .errors
            .iter()
            .map(|e| esc(e))
            .collect::<Vec<_>>()
            .join("<br>");
        if s.phases.is_empty() {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{:.1}s</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>{errs}</td></tr>",
                esc(&s.name),
                s.duration.as_secs_f64()
            );
        }
        for ph in &s.phases {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{:.1}s</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}/s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.name),
                s.duration.as_secs_f64(),
                ph.index,
                esc(&ph.tuning_set),
                ph.requested_qps
                    .map(|q| format!("{q:.1}/s"))
                    .unwrap_or_else(|| "-".into()),
                ph.achieved_qps,
                ph.actions_started,
                ph.actions_failed,
                ph.errors
                    .iter()
                    .map(|e| esc(e))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
    }
    o.push_str("</table>");

    if !v.meta.client_latency.is_empty() {
        o.push_str("<h2>Client-side latency</h2><table><tr>");
        for h in CLIENT_LATENCY_HEADERS {
            let _ = write!(o, "<th>{h}</th>");
        }
        o.push_str("</tr>");
        for e in &v.meta.client_latency {
            o.push_str("<tr>");
            for c in client_latency_cells(e) {
                let _ = write!(o, "<td>{}</td>", esc(&c));
            }
            o.push_str("</tr>");
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}
