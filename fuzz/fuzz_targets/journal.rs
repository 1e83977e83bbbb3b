//! The journal: frames (length, checksum, sequence) and the ops in their payloads, read as
//! start-up replay reads them.
//!
//! The first byte picks a mode:
//! - 0 `raw`: `applied: u64 LE | salt: u64 LE | journal file bytes`. Checksums are what the
//!   bytes say, as after a crash or on a foreign file.
//! - 1 `sealed`: `applied: u8 | chunk*`, each chunk `seq step: u8 | len: u16 LE | payload`;
//!   the target seals the chunks into frames with valid checksums (sequence = previous +
//!   step - 1, from `applied`), so the mutations reach the op decoder, and checks that replay
//!   applies exactly the frames its rules say, in order.
//! - 2 `ops`: the rest is one frame payload for the op decoder.
//!
//! Checked: never a panic; replay's result agrees with its rules; decoded ops re-encode (in
//! the current op format) to bytes that decode to the same ops.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::fuzzing::{decode_journal, seal_frame};
use wharf::storage::{WriteOp, decode_ops, encode_ops};

/// The salt of the `sealed` mode's run.
const SALT: u64 = 0x5eed_f022;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => raw(rest),
        1 => sealed(rest),
        _ => {
            if let Ok(ops) = decode_ops(rest) {
                round_trip(&ops);
            }
        }
    }
});

fn raw(data: &[u8]) {
    if data.len() < 16 {
        return;
    }
    let (head, journal) = data.split_at(16);
    let applied = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
    let salt = u64::from_le_bytes(head[8..].try_into().unwrap_or_default());
    if let Ok(replayed) = decode_journal(journal, applied, salt) {
        check_sequence(applied, &replayed.frames, replayed.last);
        for (_, ops) in &replayed.frames {
            round_trip(ops);
        }
    }
}

fn sealed(data: &[u8]) {
    let Some((&applied, mut rest)) = data.split_first() else {
        return;
    };
    let applied = u64::from(applied);
    let mut journal = Vec::new();
    let mut frames: Vec<(u64, &[u8])> = Vec::new();
    let mut seq = applied;
    while rest.len() >= 3 {
        let step = u64::from(rest[0]);
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let payload = &rest[3..3 + len];
        rest = &rest[3 + len..];
        // Step 1 is the next frame; 0 repeats a sequence, larger ones skip, and a step
        // wrapping below `applied` makes a frame of the previous round.
        seq = (seq + step).wrapping_sub(1) % 512;
        seal_frame(&mut journal, seq, SALT, payload);
        frames.push((seq, payload));
    }
    // Leftover bytes are a torn tail: never a frame.
    journal.extend_from_slice(rest);

    // Which frames replay applies: past the checkpoint's, consecutive, from the first one
    // after `applied`.
    let mut expected = Vec::new();
    let mut last = applied;
    for &(seq, payload) in &frames {
        if seq <= applied && last == applied {
            continue;
        }
        if seq != last + 1 {
            break;
        }
        expected.push((seq, payload));
        last = seq;
    }
    match decode_journal(&journal, applied, SALT) {
        Ok(replayed) => {
            check_sequence(applied, &replayed.frames, replayed.last);
            assert_eq!(replayed.last, last, "replay stopped early or late");
            assert_eq!(replayed.frames.len(), expected.len());
            for ((seq, ops), (want_seq, payload)) in replayed.frames.iter().zip(&expected) {
                assert_eq!(seq, want_seq);
                assert_eq!(
                    decode_ops(payload).ok().as_ref(),
                    Some(ops),
                    "replay decoded frame {seq} otherwise than the op decoder"
                );
                round_trip(ops);
            }
        }
        Err(_) => {
            // Recovery stops at the first applied frame whose ops do not decode.
            assert!(
                expected.iter().any(|(_, p)| decode_ops(p).is_err()),
                "replay failed although every frame it applies decodes"
            );
        }
    }
}

/// The frames replay applied follow the checkpoint, one sequence after the other, and the
/// sequence it returns is the last of them.
fn check_sequence(applied: u64, frames: &[(u64, Vec<WriteOp>)], last: u64) {
    for (i, (seq, _)) in frames.iter().enumerate() {
        assert_eq!(Some(*seq), applied.checked_add(i as u64 + 1), "frame order");
    }
    assert_eq!(last, frames.last().map_or(applied, |(seq, _)| *seq));
}

/// Decoded ops, encoded again, decode to the same ops.
fn round_trip(ops: &[WriteOp]) {
    let mut bytes = Vec::new();
    encode_ops(ops.iter(), &mut bytes);
    match decode_ops(&bytes) {
        Ok(again) => assert_eq!(again, ops, "ops changed in a round trip"),
        Err(error) => panic!("re-encoded ops do not decode: {error}"),
    }
}
