//! Cron expressions and time zones, as a schedule PUT (and recovery) parses them.
//!
//! Input: `after: u64 LE | expression | 0x00 | zone` (no zero byte: all expression, empty
//! zone). Checked: never a panic; what parses has a first fire time after 1970 (parse
//! promises it), and its next fire times after the fuzzed instant strictly increase and agree
//! with `upcoming`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::fuzzing::parse_cron;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, text) = data.split_at(8);
    let after = u64::from_le_bytes(head.try_into().unwrap_or_default());
    let (expression, zone) = match text.iter().position(|&b| b == 0) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, &[][..]),
    };
    let (Ok(expression), Ok(zone)) = (std::str::from_utf8(expression), std::str::from_utf8(zone))
    else {
        return;
    };
    let Ok(schedule) = parse_cron(expression, zone) else {
        return;
    };
    assert!(
        schedule.next_after(0).is_some(),
        "{expression:?} in {zone:?} parsed but never fires"
    );
    // Instants past year 9999 have no fire time; keep most of them in range.
    let after = after % 400_000_000_000_000;
    let mut cursor = after;
    let mut fires = Vec::new();
    for _ in 0..5 {
        let Some(next) = schedule.next_after(cursor) else {
            break;
        };
        assert!(
            next > cursor,
            "{expression:?} in {zone:?}: next after {cursor} is {next}"
        );
        fires.push(next);
        cursor = next;
    }
    assert_eq!(
        schedule.upcoming(after, 5),
        fires,
        "{expression:?} in {zone:?}: upcoming disagrees with next_after"
    );
});
