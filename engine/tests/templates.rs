//! Every template validates, previews and runs, and runs are reproducible.

use sdsim_engine::{analytic_preview, run_design, templates, validate_json};

#[test]
fn every_template_validates_previews_and_runs() {
    let all = templates();
    assert!(all.len() >= 6, "expected the documented templates");
    for (id, json) in all {
        let mut design = validate_json(json).unwrap_or_else(|p| panic!("{id}: {p:?}"));
        // Debug builds are slow: a few seconds of each template is enough here.
        if std::env::var_os("SDSIM_SHOW").is_none() {
            design.duration_s = design.duration_s.min(4.0);
        }
        let preview = analytic_preview(&design);
        assert!(
            preview.notes.iter().all(|n| !n.starts_with("invalid")),
            "{id}: {:?}",
            preview.notes
        );
        let report = run_design(&design, None).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(report.requests_simulated() > 0, "{id}");
        assert!(report.end_to_end.completions > 0, "{id}");
        assert!(report.stopped_early.is_none(), "{id}");
        if std::env::var_os("SDSIM_SHOW").is_some() {
            println!("== {id}\n{report}");
            println!(
                "preview: {}",
                serde_json::to_string_pretty(&preview).unwrap_or_default()
            );
        }
    }
}
