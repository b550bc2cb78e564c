//! Criterion benchmark of the engine alone on the `large_platform` template (63
//! components, replicas, caches, a diurnal workload).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sdsim_engine::{run_design, template, validate_json, Design};

fn large() -> Design {
    let json = template("large_platform").unwrap_or_default();
    let mut d = match validate_json(json) {
        Ok(d) => d,
        Err(p) => panic!("large_platform is invalid: {p:?}"),
    };
    d.duration_s = 5.0;
    d
}

fn bench(c: &mut Criterion) {
    let d = large();
    let requests = run_design(&d, Some(1))
        .map(|r| r.requests_simulated())
        .unwrap_or(0);
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(requests));
    g.bench_function("large_platform_5s", |b| {
        b.iter(|| run_design(&d, Some(1)).map(|r| r.requests_simulated()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
