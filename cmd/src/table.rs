//! Terminal output: the end-of-run verdict table and `cl2 measurements`.

use cl2_framework::measurement::{MeasurementResult, Registry};
use cl2_framework::report::{self, ReportFiles};
use cl2_framework::run::RunRecord;

/// Prints a fixed-width table (first row is the header).
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        println!("{}", line.join("  ").trim_end());
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            println!("{}", "-".repeat(total));
        }
    }
}

/// The end-of-run summary: steps, verdict table, report location.
pub fn print_run_summary(record: &RunRecord, results: &[MeasurementResult], files: &ReportFiles) {
    let duration = (record.finished - record.started).num_milliseconds() as f64 / 1000.0;
    println!();
    println!(
        "Test {:?}: {} steps in {duration:.1}s{}",
        record.test_name,
        record.steps.len(),
        if record.partial {
            " (PARTIAL: interrupted or stopped early)"
        } else {
            ""
        }
    );
    let mut rows = vec![vec![
        "MEASUREMENT".to_string(),
        "IDENTIFIER".to_string(),
        "RESULT".to_string(),
        "SLO".to_string(),
        "VERDICT".to_string(),
    ]];
    for row in report::verdict_table(results) {
        rows.push(vec![
            row.measurement,
            row.identifier,
            row.numbers,
            row.slo,
            row.verdict.label().to_string(),
        ]);
    }
    if rows.len() > 1 {
        println!();
        print_table(&rows);
    }
    let errors: Vec<String> = record
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.context, e.message))
        .chain(
            record
                .steps
                .iter()
                .flat_map(|s| s.errors.iter().map(move |e| format!("{}: {e}", s.name))),
        )
        .collect();
    if !errors.is_empty() {
        println!();
        println!("Errors:");
        for e in errors.iter().take(20) {
            println!("  - {e}");
        }
        if errors.len() > 20 {
            println!("  ... and {} more (see report.json)", errors.len() - 20);
        }
    }
    println!();
    println!("Overall: {:?}", files.verdict);
    println!("Reports: {}", files.dir.display());
}

/// `cl2 measurements`.
pub fn print_measurements(registry: &Registry) {
    let mut rows = vec![vec!["METHOD".to_string(), "SUMMARY".to_string()]];
    for e in registry.entries() {
        let summary = match &e.plugin {
            Some(path) => format!("{} (plugin {})", e.summary, path.display()),
            None => e.summary,
        };
        rows.push(vec![e.name, summary]);
    }
    print_table(&rows);
}
