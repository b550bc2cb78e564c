//! The documentation stays true: the README's example design validates and runs, and its
//! catalogue table matches the catalogue.

use sdsim_engine::catalogue::CATALOGUE;
use sdsim_engine::{analytic_preview, run_design, validate_json};

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_example_design_validates_and_runs() {
    let text = readme();
    let start = text
        .find("```json\n")
        .map(|i| i + 8)
        .unwrap_or_else(|| panic!("no json block"));
    let end = start
        + text[start..]
            .find("```")
            .unwrap_or_else(|| panic!("unterminated json block"));
    let design = validate_json(&text[start..end]).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(
        design.chaos.len(),
        7,
        "the example shows every kind of chaos"
    );
    let preview = analytic_preview(&design);
    assert!(preview.saturated.is_empty(), "{:?}", preview.saturated);
    let report = run_design(&design, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.stopped_early.is_none());
    assert!(
        report.end_to_end.completions > 50_000,
        "{}",
        report.end_to_end.completions
    );
    assert!(report.end_to_end.errors > 0, "the chaos must show");
}

#[test]
fn the_catalogue_table_matches_the_catalogue() {
    let text = readme();
    let mut rows = 0;
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let kind = cells[1].trim_matches('`');
        let Some(p) = CATALOGUE.iter().find(|p| p.kind == kind) else {
            continue; // another table (templates, chaos, ...)
        };
        rows += 1;
        let num = |s: &str| {
            s.replace(',', "")
                .trim_end_matches(" ms")
                .parse::<f64>()
                .ok()
        };
        if kind == "client" {
            continue;
        }
        assert_eq!(num(cells[4]), Some(p.capacity_per_s), "{kind} capacity");
        assert_eq!(num(cells[5]), Some(p.latency_ms), "{kind} latency");
        assert_eq!(
            num(cells[6]),
            Some(f64::from(p.servers())),
            "{kind} servers"
        );
        assert_eq!(
            num(cells[7]),
            p.queue_capacity.map(|q| q as f64),
            "{kind} queue"
        );
        assert_eq!(num(cells[8]), p.hit_ratio, "{kind} hit ratio");
    }
    assert_eq!(rows, CATALOGUE.len(), "every kind is documented");
}
