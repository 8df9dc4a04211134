//! `summary.md`: the human summary (run facts, steps with achieved vs requested rate, the SLO
//! table with violations named, latency by cluster load, client-side latency).

use super::{
    CLIENT_LATENCY_HEADERS, LOAD_LATENCY_HEADERS, View, client_latency_cells, duration_secs,
    format_value, opt_ms,
};
use crate::measurement::Verdict;
use std::fmt::Write;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the markdown summary.
pub(crate) fn render(v: &View<'_>) -> String {
    let r = v.record;
    let mut o = String::new();
    let _ = writeln!(o, "# cl2 report: {}", r.test_name);
    let _ = writeln!(o);
    if r.partial {
        let _ = writeln!(
            o,
            "> **PARTIAL RUN** — the run was interrupted or stopped early; numbers cover only \
             what ran.\n"
        );
    }
    if !v.validity.is_empty() {
        let _ = writeln!(
            o,
            "> **RUN INVALID** — cl2 itself was the bottleneck; do not read these numbers as the \
             cluster's:"
        );
        for i in &v.validity {
            let _ = writeln!(o, "> - {i}");
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "**Verdict: {}**\n", v.verdict.label());
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Test | {} |", cell(&r.test_name));
    let _ = writeln!(
        o,
        "| Config | `{}` (sha256 `{}`) |",
        v.meta.config_path,
        short(&v.meta.config_hash)
    );
    let _ = writeln!(o, "| Cluster | {} |", cell(&v.meta.cluster));
    let _ = writeln!(o, "| Server version | {} |", cell(&v.meta.server_version));
    let _ = writeln!(o, "| Nodes | {} |", v.meta.nodes);
    let _ = writeln!(o, "| cl2 version | {} |", v.meta.tool_version);
    let _ = writeln!(
        o,
        "| Started | {} |",
        r.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = writeln!(o, "| Duration | {:.1}s |", duration_secs(r));
    let _ = writeln!(o);

    if !v.reasons.is_empty() {
        let _ = writeln!(o, "## Failures\n");
        for reason in &v.reasons {
            let _ = writeln!(o, "- {}", reason.replace('\n', " "));
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## SLOs\n");
    if v.rows.is_empty() {
        let _ = writeln!(o, "No measurement produced a verdict.\n");
    } else {
        let _ = writeln!(
            o,
            "| Measurement | Identifier | Key numbers | SLO | Verdict |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for row in &v.rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | **{}** |",
                cell(&row.measurement),
                cell(&row.identifier),
                cell(&row.numbers),
                cell(&row.slo),
                row.verdict.label()
            );
        }
        let _ = writeln!(o);
        let violated: Vec<_> = v
            .rows
            .iter()
            .filter(|r| r.verdict != Verdict::Pass && !r.problems.is_empty())
            .collect();
        if !violated.is_empty() {
            let _ = writeln!(o, "### Violations and errors\n");
            for row in violated {
                for p in &row.problems {
                    let _ = writeln!(
                        o,
                        "- **{} {}** ({}): {}",
                        row.measurement,
                        row.identifier,
                        row.verdict.label(),
                        p.replace('\n', " ")
                    );
                }
            }
            let _ = writeln!(o);
        }
    }

    if !v.load.is_empty() {
        let _ = writeln!(o, "## Latency by cluster load\n");
        let _ = writeln!(
            o,
            "Pod startup = create → running as seen by the watch (all pods). API = all \
             single-object (resource-scope, non-LIST) calls aggregated; worst = highest p99 of any \
             (verb, resource).\n"
        );
        let _ = writeln!(
            o,
            "| Load | {} | API worst p99 |",
            LOAD_LATENCY_HEADERS.join(" | ")
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        for l in &v.load {
            let worst = match (&l.api_worst_p99, &l.api_worst_call) {
                (Some(p), Some(c)) => format!("{} ({})", format_value(*p, "ms"), cell(c)),
                (p, _) => opt_ms(*p),
            };
            let latencies: Vec<String> = l.latencies().into_iter().map(opt_ms).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                cell(&l.level),
                latencies.join(" | "),
                worst
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Steps\n");
    if r.steps.is_empty() {
        let _ = writeln!(o, "No step ran.\n");
    } else {
        let _ = writeln!(
            o,
            "| Step | Duration | Phase | Tuning set | Objects | Requested rate | Achieved rate | Actions | Failed |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
        for s in &r.steps {
            if s.phases.is_empty() {
                let _ = writeln!(
                    o,
                    "| {} | {:.1}s | - | - | - | - | - | - | {} |",
                    cell(&s.name),
                    s.duration.as_secs_f64(),
                    s.errors.len()
                );
            }
            for ph in &s.phases {
                let _ = writeln!(
                    o,
                    "| {} | {:.1}s | {} | {} | {} per ns × {} ns: {} | {} | {:.1}/s | {} | {} |",
                    cell(&s.name),
                    s.duration.as_secs_f64(),
                    ph.index,
                    cell(&ph.tuning_set),
                    ph.replicas_per_namespace,
                    ph.namespaces,
                    cell(&ph.objects.join(",")),
                    ph.requested_qps
                        .map(|q| format!("{q:.1}/s"))
                        .unwrap_or_else(|| "-".into()),
                    ph.achieved_qps,
                    ph.actions_started,
                    ph.actions_failed
                );
            }
        }
        let _ = writeln!(o);
    }

    if !v.meta.client_latency.is_empty() {
        let _ = writeln!(o, "## Client-side latency (as cl2 saw it)\n");
        let _ = writeln!(o, "| {} |", CLIENT_LATENCY_HEADERS.join(" | "));
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
        for e in &v.meta.client_latency {
            let cells = client_latency_cells(e).map(|c| cell(&c));
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(o);
    }
    if !r.namespaces_left.is_empty() {
        let _ = writeln!(
            o,
            "Namespaces left on the cluster: {}\n",
            r.namespaces_left.join(", ")
        );
    }
    o
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}
