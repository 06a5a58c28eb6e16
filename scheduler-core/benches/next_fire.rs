//! `next_fire_after` for typical expressions. Run with `cargo bench -p scheduler-core`.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use scheduler_core::Trigger;

fn bench_next_fire(c: &mut Criterion) {
    let base: DateTime<Utc> = "2026-06-15T10:17:23Z".parse().expect("instant");
    let cases = [
        ("every_minute_utc", "* * * * *", "UTC"),
        ("every_5s_6field_utc", "*/5 * * * * *", "UTC"),
        (
            "weekdays_0930_shanghai",
            "0 30 9 * * MON-FRI",
            "Asia/Shanghai",
        ),
        ("daily_0230_new_york", "30 2 * * *", "America/New_York"),
        ("every_15min_berlin", "*/15 * * * *", "Europe/Berlin"),
        ("hourly_list_berlin", "0 0 8-18/2 * * *", "Europe/Berlin"),
        ("monthly_1st_utc", "0 0 1 * *", "UTC"),
        ("last_friday_new_york", "0 18 * * 5L", "America/New_York"),
        ("second_friday_utc", "0 9 * * FRI#2", "UTC"),
    ];
    let mut group = c.benchmark_group("next_fire_after");
    for (name, expr, zone) in cases {
        let trigger = Trigger::cron(expr, zone).expect("valid expression");
        group.bench_function(name, |b| {
            b.iter(|| black_box(&trigger).next_fire_after(black_box(base)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_next_fire);
criterion_main!(benches);
