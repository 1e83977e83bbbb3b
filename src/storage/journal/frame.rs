//! Journal frames: `len: u32 LE | crc32: u32 LE | seq: u64 LE | payload`, the CRC (crc32fast)
//! covering the run's salt (8 bytes, LE, not stored), seq and payload. What the payload holds
//! is the caller's business (the encoded ops of one commit group, see [`super::super::ops`]).

use std::io::Read;
use std::path::Path;

use super::super::disk::{Disk, Reader};
use super::super::error::StoreError;

/// Bytes before a frame's payload: length, checksum, sequence.
pub const HEADER_LEN: usize = 16;
/// Refuse to read a frame claiming to be larger (a torn length field). Frames stay far below:
/// a commit group stops at 64 MiB of ops plus one request of at most `max_body_bytes`
/// (at most 256 MiB).
const MAX_FRAME_LEN: usize = 1 << 30;

/// The checksum of a frame's `seq | payload` bytes (given in `parts`) in the run salted with
/// `salt`.
fn checksum(salt: u64, parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

/// Starts a frame at the end of `out`: reserves its header. Append the payload, then call
/// [`seal`] with the returned start.
pub fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    start
}

/// Fills in the header of the frame that starts at `start` (everything after it is its
/// payload): sequence `seq`, checksummed with the run's `salt`.
pub fn seal(out: &mut [u8], start: usize, seq: u64, salt: u64) {
    let len = out.len() - start - HEADER_LEN;
    out[start + 8..start + HEADER_LEN].copy_from_slice(&seq.to_le_bytes());
    let crc = checksum(salt, &[&out[start + 8..]]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Calls `apply` with the payload of every intact frame of the run salted with `salt` after
/// `applied`, in order, and returns the sequence of the last frame read (or `applied`). A
/// missing file reads as empty. The file is read frame by frame: most of it is usually zeros.
///
/// Reading stops at the first frame that is torn (short, bad CRC), of another run (another
/// salt: bad CRC) or stale (a sequence other than the next one): what follows a torn write was
/// never acknowledged, and stale frames are an earlier round's.
pub fn replay(
    disk: &dyn Disk,
    path: &Path,
    applied: u64,
    salt: u64,
    apply: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    if !disk.exists(path).map_err(StoreError::Io)? {
        return Ok(applied);
    }
    let file = disk.open(path).map_err(StoreError::Io)?;
    let len = file.size().map_err(StoreError::Io)?;
    replay_from(
        std::io::BufReader::with_capacity(1 << 20, Reader::new(&*file, len)),
        len,
        applied,
        salt,
        apply,
    )
}

/// [`replay`] of a journal in two segments (see [`super::syncer`]): the segment whose first
/// frame comes first is read first, then the other, the sequence carrying on from one to the
/// next. A segment's frames from rounds before the checkpoint are skipped as in [`replay`];
/// one whose first frame is torn, of another run or blank is empty.
pub fn replay_segments(
    disk: &dyn Disk,
    paths: [&Path; 2],
    applied: u64,
    salt: u64,
    mut apply: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut firsts = Vec::new();
    for path in paths {
        if !disk.exists(path).map_err(StoreError::Io)? {
            continue;
        }
        let file = disk.open(path).map_err(StoreError::Io)?;
        let mut remaining = file.size().map_err(StoreError::Io)?;
        let mut payload = Vec::new();
        let mut reader = Reader::new(&*file, remaining);
        if let Some(seq) =
            next_frame(&mut reader, &mut remaining, salt, &mut payload).map_err(StoreError::Io)?
        {
            firsts.push((seq, path));
        }
    }
    firsts.sort();
    let mut last = applied;
    for (_, path) in firsts {
        last = replay(disk, path, last, salt, &mut apply)?;
    }
    Ok(last)
}

/// [`replay`] of a journal of `len` bytes read from `reader` (the file, or bytes in memory for
/// `crate::fuzzing`).
pub(crate) fn replay_from(
    mut reader: impl Read,
    len: u64,
    applied: u64,
    salt: u64,
    mut apply: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut remaining = len;
    let mut last = applied;
    let mut payload = Vec::new();
    while let Some(seq) =
        next_frame(&mut reader, &mut remaining, salt, &mut payload).map_err(StoreError::Io)?
    {
        if seq <= applied && last == applied {
            // The previous round, already in the checkpoint (a crash between the checkpoint
            // and the rewind leaves it in place).
            continue;
        }
        if seq != last + 1 {
            break; // stale: a frame of an earlier round past the end of this one
        }
        apply(seq, &payload)?;
        last = seq;
    }
    Ok(last)
}

/// Reads the next frame into `payload` and returns its sequence, or `None` at the end of the
/// file or at a frame that is torn or of another run (its checksum does not match `salt`).
/// `remaining` (the unread bytes of the file) keeps a torn length field from allocating more
/// than the file holds.
fn next_frame(
    reader: &mut impl Read,
    remaining: &mut u64,
    salt: u64,
    payload: &mut Vec<u8>,
) -> std::io::Result<Option<u64>> {
    if *remaining < HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut header = [0; HEADER_LEN];
    reader.read_exact(&mut header)?;
    *remaining -= HEADER_LEN as u64;
    let [l0, l1, l2, l3, c0, c1, c2, c3, seq @ ..] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len as usize > MAX_FRAME_LEN || u64::from(len) > *remaining {
        return Ok(None);
    }
    payload.clear();
    payload.resize(len as usize, 0);
    reader.read_exact(payload)?;
    *remaining -= u64::from(len);
    Ok((checksum(salt, &[&seq, payload]) == crc).then(|| u64::from_le_bytes(seq)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::super::disk::RealDisk;
    use super::*;

    /// The salt of the runs in these tests, unless one says otherwise.
    const SALT: u64 = 0x5eed;

    /// Frames `seqs` of the run salted with `salt`, each holding its sequence as text.
    pub fn salted_frames(salt: u64, seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            let start = begin(&mut out);
            out.extend_from_slice(format!("s{seq}").as_bytes());
            seal(&mut out, start, seq, salt);
        }
        out
    }

    fn frames(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        salted_frames(SALT, seqs)
    }

    fn replayed(bytes: &[u8], applied: u64) -> (u64, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        std::fs::write(&path, bytes).unwrap();
        replayed_file(&path, applied, SALT)
    }

    pub fn replayed_file(path: &Path, applied: u64, salt: u64) -> (u64, Vec<String>) {
        let mut seen = Vec::new();
        let last = replay(&RealDisk, path, applied, salt, |_, payload| {
            seen.push(String::from_utf8(payload.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        (last, seen)
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn frames_after_the_checkpoint_replay_in_order() {
        let bytes = frames(1..=4);
        assert_eq!(replayed(&bytes, 0), (4, names(&["s1", "s2", "s3", "s4"])));
        assert_eq!(replayed(&bytes, 2), (4, names(&["s3", "s4"])));
        assert_eq!(replayed(&bytes, 4), (4, Vec::new()));
    }

    #[test]
    fn a_torn_tail_ends_the_replay() {
        let bytes = frames(1..=3);
        // Cut inside the last frame: its fsync never finished, nobody was answered.
        let (last, seen) = replayed(&bytes[..bytes.len() - 1], 0);
        assert_eq!((last, seen.len()), (2, 2));
        // A flipped bit inside the second frame ends the replay before it.
        let mut corrupt = bytes.clone();
        let second = frames(1..=1).len();
        corrupt[second + HEADER_LEN] ^= 0x40;
        assert_eq!(replayed(&corrupt, 0), (1, names(&["s1"])));
    }

    #[test]
    fn stale_frames_of_an_earlier_round_are_not_replayed() {
        // Round one wrote 1..=5 and was checkpointed at 5; round two rewound and wrote 6..=7
        // over the start of the file, leaving 3..=5 behind it.
        let mut bytes = frames(6..=7);
        let old = frames(1..=5);
        let cut = frames(1..=2).len();
        bytes.extend_from_slice(&old[cut..]);
        assert_eq!(replayed(&bytes, 5), (7, names(&["s6", "s7"])));
        // A crash between the checkpoint and the first new frame: the old round is all there.
        assert_eq!(replayed(&old, 5), (5, Vec::new()));
    }

    #[test]
    fn frames_of_an_earlier_run_are_not_replayed() {
        // Run A's frames 2..=4 were written but only 1 was acknowledged before a crash tore
        // frame 2; run B replayed up to 1 and wrote its own 2..=3 from the start of the file.
        // If those end exactly where run A's frame 4 starts, only the salt tells them apart.
        let run_a = salted_frames(1, [2, 3, 4]);
        let mut bytes = salted_frames(2, [2, 3]);
        let a4 = salted_frames(1, [2, 3]).len();
        assert_eq!(
            bytes.len(),
            a4,
            "the new frames end where the old frame 4 starts"
        );
        bytes.extend_from_slice(&run_a[a4..]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(replayed_file(&path, 1, 2), (3, names(&["s2", "s3"])));
    }

    #[test]
    fn a_missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let last = replay(&RealDisk, &dir.path().join("journal"), 9, SALT, |_, _| {
            Ok(())
        })
        .unwrap();
        assert_eq!(last, 9);
    }

    #[test]
    fn a_length_beyond_the_file_ends_the_replay() {
        let mut bytes = frames(1..=2);
        let second = frames(1..=1).len();
        bytes[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(replayed(&bytes, 0), (1, names(&["s1"])));
    }
}
