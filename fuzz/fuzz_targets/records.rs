//! Stored records (a format-version byte, then postcard): every table's decoder on the same
//! bytes.
//!
//! Checked: never a panic (nor an allocation the bytes cannot justify); a value that decodes,
//! encoded again in the current format, decodes to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::fuzzing::{RecordKind, decode_record, encode_record};

fuzz_target!(|data: &[u8]| {
    for kind in RecordKind::ALL {
        let Ok(record) = decode_record(kind, data) else {
            continue;
        };
        let bytes = encode_record(&record);
        match decode_record(kind, &bytes) {
            Ok(again) => assert_eq!(again, record, "{kind:?} changed in a round trip"),
            Err(error) => panic!("a re-encoded {kind:?} does not decode: {error}"),
        }
    }
});
