//! Caps that keep hostile or mistaken designs from exhausting memory or running forever.
//!
//! Validation rejects designs past these limits with a clear message; the run itself
//! also stops at an event budget and an in-flight cap, so even a design that passes
//! validation but loops heavily ends in bounded time.

/// Largest design document accepted, bytes.
pub const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;
/// Components in one design.
pub const MAX_COMPONENTS: usize = 2_000;
/// Connections in one design.
pub const MAX_CONNECTIONS: usize = 20_000;
/// Chaos entries or alert rules in one design.
pub const MAX_RULES: usize = 1_000;
/// Replicas of one component.
pub const MAX_REPLICAS: u32 = 1_000;
/// Replicas over the whole design.
pub const MAX_STATIONS: u64 = 20_000;
/// Servers of one replica.
pub const MAX_SERVERS: u32 = 100_000;
/// Simulated duration, seconds (30 days).
pub const MAX_DURATION_S: f64 = 30.0 * 86_400.0;
/// Metric windows in one run.
pub const MAX_WINDOWS: f64 = 100_000.0;
/// Windows times components (the size of the stored series).
pub const MAX_WINDOW_CELLS: f64 = 2_000_000.0;
/// Rate of one client, requests per second.
pub const MAX_RATE: f64 = 1e8;
/// Users of one closed workload.
pub const MAX_USERS: u32 = 1_000_000;
/// Any time given in milliseconds (one day).
pub const MAX_MS: f64 = 86_400_000.0;
/// Requests a design may be expected to generate.
pub const MAX_EXPECTED_REQUESTS: f64 = 2e9;
/// Default event budget of a run.
pub const DEFAULT_MAX_EVENTS: u64 = 4_000_000_000;
/// Largest event budget a design may ask for.
pub const MAX_EVENTS: u64 = 40_000_000_000;
/// Components one request may visit before it is failed as looping.
pub const MAX_HOPS: u32 = 256;
/// Requests alive at once; arrivals beyond it are dropped at the edge.
pub const MAX_IN_FLIGHT: usize = 5_000_000;
/// Longest component name.
pub const MAX_NAME_LEN: usize = 200;
