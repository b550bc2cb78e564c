//! Ready-made designs, embedded from `engine/templates/*.json`.
//!
//! Every template is validated and run by the tests, so a template that breaks fails CI.

const TEMPLATES: &[(&str, &str)] = &[
    (
        "three_tier_web_app",
        include_str!("../templates/three_tier_web_app.json"),
    ),
    (
        "read_heavy_api_with_cache",
        include_str!("../templates/read_heavy_api_with_cache.json"),
    ),
    (
        "write_heavy_with_queue",
        include_str!("../templates/write_heavy_with_queue.json"),
    ),
    (
        "cdn_fronted_site",
        include_str!("../templates/cdn_fronted_site.json"),
    ),
    (
        "microservices_behind_gateway",
        include_str!("../templates/microservices_behind_gateway.json"),
    ),
    (
        "closed_loop_users",
        include_str!("../templates/closed_loop_users.json"),
    ),
    ("chaos_day", include_str!("../templates/chaos_day.json")),
    (
        "large_platform",
        include_str!("../templates/large_platform.json"),
    ),
];

/// Every template as `(id, json)`.
pub fn templates() -> Vec<(&'static str, &'static str)> {
    TEMPLATES.to_vec()
}

/// The JSON of one template.
pub fn template(id: &str) -> Option<&'static str> {
    TEMPLATES.iter().find(|(k, _)| *k == id).map(|(_, j)| *j)
}
