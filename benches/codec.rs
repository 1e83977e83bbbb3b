//! The record codec (`storage::encode` / `storage::decode`: a format-version byte, then
//! postcard) on the two values every job writes.
//!
//! - `codec/job_record/{encode,decode}`: a [`JobRecord`] as a poll writes it: queue "emails",
//!   a priority, state `Leased`, one attempt, no `last_error`. Every life-cycle transition
//!   decodes and re-encodes one of these (`writer.rs`, `WriteOp::Update`), and recovery decodes
//!   every stored one.
//! - `codec/job_body/payload=256B/{encode,decode}`: a [`JobBody`] with a 256-byte JSON payload
//!   and two small headers, encoded once at enqueue and decoded at every delivery.
//!
//! Encoding includes allocating the output `Vec`, decoding includes allocating the owned
//! strings, as in the store. Throughput is in values (elem/s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wharf::storage::{JobBody, JobRecord, StoredState, decode, encode};

// The allocator of the `wharf` binary (src/main.rs), so allocation costs match production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAYLOAD_BYTES: usize = 256;

fn record() -> JobRecord {
    JobRecord {
        queue: "emails".into(),
        priority: 192,
        state: StoredState::Leased {
            nonce: 0x5f0c_9a1e_77d2_3b41,
            deadline: 1_763_912_210_000,
        },
        attempts: 1,
        max_attempts: 5,
        lease_ms: None,
        enqueued_at: 1_763_912_179_512,
        updated_at: 1_763_912_180_000,
        last_error: None,
        version: 2,
        group: None,
    }
}

/// A JSON object of exactly [`PAYLOAD_BYTES`] bytes.
fn payload() -> String {
    let head = r#"{"to":"ada@example.com","template":"welcome","locale":"en-GB","vars":{"name":"Ada Lovelace","plan":"pro","note":""#;
    let tail = r#""}}"#;
    let pad = PAYLOAD_BYTES - head.len() - tail.len();
    let payload = format!("{head}{}{tail}", "x".repeat(pad));
    assert_eq!(payload.len(), PAYLOAD_BYTES);
    payload
}

fn body() -> JobBody {
    JobBody {
        payload: payload(),
        headers: vec![
            ("trace-id".into(), "4bf92f3577b34da6a3ce929d0e0e4736".into()),
            ("source".into(), "signup".into()),
        ],
    }
}

fn job_record(c: &mut Criterion) {
    let record = record();
    let bytes = encode(&record);
    assert_eq!(decode::<JobRecord>(&bytes).unwrap(), record);
    println!("codec: a JobRecord encodes to {} bytes", bytes.len());

    let mut group = c.benchmark_group("codec/job_record");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(&record))));
    group.bench_function("decode", |b| {
        b.iter(|| decode::<JobRecord>(black_box(&bytes)).unwrap())
    });
    group.finish();
}

fn job_body(c: &mut Criterion) {
    let body = body();
    let bytes = encode(&body);
    assert_eq!(decode::<JobBody>(&bytes).unwrap(), body);
    println!(
        "codec: a JobBody with a {PAYLOAD_BYTES}-byte payload encodes to {} bytes",
        bytes.len()
    );

    let mut group = c.benchmark_group(format!("codec/job_body/payload={PAYLOAD_BYTES}B"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(&body))));
    group.bench_function("decode", |b| {
        b.iter(|| decode::<JobBody>(black_box(&bytes)).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Command-line flags (--measurement-time, --warm-up-time, --quick) override these.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = job_record, job_body
}
criterion_main!(benches);
