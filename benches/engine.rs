//! Throughput of `Engine::analyze` over the messages of `eval/dev.jsonl`.
//! Run: `cargo bench --bench engine`; criterion reports elements (messages) per second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cusp::engine::{Engine, QuestionContext};

fn messages() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/dev.jsonl");
    let src = std::fs::read_to_string(path).expect("eval/dev.jsonl");
    src.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["text"].as_str().expect("text").to_string()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::builtin();
    let msgs = messages();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("analyze_dev_set", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(engine.analyze(black_box(m)));
            }
        })
    });
    let lexicon = Engine::lexicon_only();
    g.bench_function("analyze_lexicon_only_dev_set", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(lexicon.analyze(black_box(m)));
            }
        })
    });
    g.bench_function("analyze_and_choose_questions_dev_set", |b| {
        b.iter(|| {
            for m in &msgs {
                let a = engine.analyze(black_box(m));
                // With the text: slots and the situation are read from it.
                let ctx = QuestionContext {
                    text: m,
                    ..QuestionContext::default()
                };
                black_box(engine.choose_questions(&a, &ctx));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
