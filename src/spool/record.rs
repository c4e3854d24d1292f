//! One spool record (pure): a batch of lines with its length and checksum.
//!
//! Layout (version 2), little-endian: `magic "vmp2" | len u32 | crc u32 |
//! lines u32 | spooled_at_ms u64 | payload`, where `payload` is `len` bytes of
//! lines, each ended by `\n`, and `crc` is the CRC-32 of `len` and everything
//! after `crc`. Because the checksum covers the length, a length damaged in
//! the middle of a segment is caught instead of read as a torn tail, and
//! [`resync`] finds the next good record by its magic: one bad record costs
//! only itself.
//!
//! Version 1 (before the magic; `len | crc | lines | spooled_at_ms |
//! payload`, the CRC not covering `len`) is still decoded so that segments
//! written by an older vmpulse replay after an upgrade. A v1 record cannot
//! begin with the magic: read as a v1 length it exceeds `MAX_PAYLOAD`. A bad
//! v1 record still ends its segment (its length cannot be trusted), and is
//! counted like any other. A record cut short (SIGKILL or power loss
//! mid-write) or with a wrong checksum is reported, never returned as lines.

/// Starts every version-2 record.
pub const MAGIC: [u8; 4] = *b"vmp2";
/// Bytes before the payload (version 2).
pub const HEADER: usize = 24;
/// Bytes before the payload (version 1).
const HEADER_V1: usize = 20;
/// Larger lengths are corruption, not data (a batch is a few MiB at most).
const MAX_PAYLOAD: usize = 256 << 20;

/// Encodes `lines` (none may contain `\n`) as one version-2 record.
pub fn encode(lines: &[String], spooled_at_ms: u64) -> Vec<u8> {
    let payload_len: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut rec = Vec::with_capacity(HEADER + payload_len);
    rec.extend_from_slice(&MAGIC);
    rec.extend_from_slice(&(payload_len as u32).to_le_bytes());
    rec.extend_from_slice(&[0; 4]);
    rec.extend_from_slice(&(lines.len() as u32).to_le_bytes());
    rec.extend_from_slice(&spooled_at_ms.to_le_bytes());
    for l in lines {
        rec.extend_from_slice(l.as_bytes());
        rec.push(b'\n');
    }
    let crc = crc_v2(&rec);
    rec[8..12].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// The checksum of a whole v2 record: its length field and all after the CRC.
fn crc_v2(rec: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&rec[4..8]);
    h.update(&rec[12..]);
    h.finalize()
}

/// What the bytes at a record boundary hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, intact record of `size` bytes.
    Record {
        size: usize,
        lines: Vec<String>,
        spooled_at_ms: u64,
    },
    /// The bytes end before the record does (a torn tail, or a length that
    /// points past the end: [`resync`] tells which).
    Torn,
    /// Wrong checksum, impossible length or line count, or not UTF-8.
    Corrupt,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Where a record version keeps its fields, and what its CRC covers.
struct Layout {
    header: usize,
    len_at: usize,
    crc_at: usize,
    count_at: usize,
    spooled_at: usize,
    crc: fn(&[u8]) -> u32,
}

const V2: Layout = Layout {
    header: HEADER,
    len_at: 4,
    crc_at: 8,
    count_at: 12,
    spooled_at: 16,
    crc: crc_v2,
};

const V1: Layout = Layout {
    header: HEADER_V1,
    len_at: 0,
    crc_at: 4,
    count_at: 8,
    spooled_at: 12,
    crc: crc_v1,
};

fn crc_v1(rec: &[u8]) -> u32 {
    crc32fast::hash(&rec[8..])
}

/// Decodes the record at the start of `buf` (either version).
pub fn decode(buf: &[u8]) -> Decoded {
    let n = buf.len().min(MAGIC.len());
    let layout = if buf[..n] == MAGIC[..n] { &V2 } else { &V1 };
    decode_as(buf, layout)
}

fn decode_as(buf: &[u8], l: &Layout) -> Decoded {
    if buf.len() < l.header {
        return Decoded::Torn;
    }
    let len = u32_at(buf, l.len_at) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt;
    }
    let size = l.header + len;
    if buf.len() < size {
        return Decoded::Torn;
    }
    if (l.crc)(&buf[..size]) != u32_at(buf, l.crc_at) {
        return Decoded::Corrupt;
    }
    let count = u32_at(buf, l.count_at);
    lines_of(&buf[l.header..size], count, size, u64_at(buf, l.spooled_at))
}

/// The payload's lines, checked against the count the header gives.
fn lines_of(payload: &[u8], count: u32, size: usize, spooled_at_ms: u64) -> Decoded {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Decoded::Corrupt;
    };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.len() != count as usize || !text.ends_with('\n') && !text.is_empty() {
        return Decoded::Corrupt;
    }
    Decoded::Record {
        size,
        lines,
        spooled_at_ms,
    }
}

/// The start of the next intact v2 record after a bad one at `from`, if any:
/// with none, the bad bytes are a torn or corrupt tail.
pub fn resync(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from + 1;
    while at + HEADER <= buf.len() {
        let next = buf[at..].windows(MAGIC.len()).position(|w| w == MAGIC)?;
        at += next;
        if matches!(decode_as(&buf[at..], &V2), Decoded::Record { .. }) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// A record as vmpulse wrote it before the magic (version 1), for tests.
#[cfg(test)]
pub(crate) fn encode_v1(lines: &[String], spooled_at_ms: u64) -> Vec<u8> {
    let mut rec = encode(lines, spooled_at_ms);
    // Same fields without the magic; the CRC over all after itself.
    rec.drain(..4);
    let crc = crc_v1(&rec);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<String> {
        vec!["m,t=a v=1i 1".into(), "m,t=b\\ c v=2i 2".into()]
    }

    #[test]
    fn round_trip() {
        let rec = encode(&lines(), 42);
        assert_eq!(
            decode(&rec),
            Decoded::Record {
                size: rec.len(),
                lines: lines(),
                spooled_at_ms: 42
            }
        );
        // Followed by more bytes: only the first record is decoded.
        let mut two = rec.clone();
        two.extend_from_slice(&encode(&["x v=1i 3".into()], 43));
        assert!(matches!(decode(&two), Decoded::Record { size, .. } if size == rec.len()));
    }

    #[test]
    fn every_cut_is_torn_and_every_flip_corrupt() {
        let rec = encode(&lines(), 7);
        for cut in 0..rec.len() {
            assert_eq!(decode(&rec[..cut]), Decoded::Torn, "cut at {cut}");
        }
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x01;
            // A flip that makes the length point past the end reads as torn
            // here; `resync` is what tells it from a real tail.
            assert_ne!(
                std::mem::discriminant(&decode(&bad)),
                std::mem::discriminant(&decode(&rec)),
                "flip at {i}"
            );
        }
        // Zeros where a header should be (a file extended by a power loss).
        assert_eq!(decode(&[0u8; 64]), Decoded::Corrupt);
    }

    /// Before the fix the CRC left the length out: a damaged length in the
    /// middle read as a torn tail and every good record after it was lost.
    #[test]
    fn a_bad_length_mid_segment_costs_only_its_record() {
        let (a, b, c) = (
            encode(&["a v=1i 1".into()], 1),
            encode(&lines(), 2),
            encode(&["c v=3i 3".into()], 3),
        );
        for bad_len in [0u32, 5, 1 << 20, u32::MAX] {
            let mut seg = [a.clone(), b.clone(), c.clone()].concat();
            let at = a.len() + 4;
            seg[at..at + 4].copy_from_slice(&bad_len.to_le_bytes());
            assert!(!matches!(decode(&seg[a.len()..]), Decoded::Record { .. }));
            assert_eq!(
                resync(&seg, a.len()),
                Some(a.len() + b.len()),
                "length {bad_len}"
            );
        }
        // A real torn tail has nothing after it.
        let seg = [a.clone(), b[..b.len() - 3].to_vec()].concat();
        assert_eq!(decode(&seg[a.len()..]), Decoded::Torn);
        assert_eq!(resync(&seg, a.len()), None);
    }

    #[test]
    fn version_1_records_still_decode() {
        let old = encode_v1(&lines(), 9);
        assert_eq!(
            decode(&old),
            Decoded::Record {
                size: old.len(),
                lines: lines(),
                spooled_at_ms: 9
            }
        );
        let mut bad = old.clone();
        bad[old.len() - 2] ^= 1;
        assert_eq!(decode(&bad), Decoded::Corrupt);
        // A v1 length can never spell the magic.
        assert!(u32::from_le_bytes(MAGIC) as usize > MAX_PAYLOAD);
    }

    #[test]
    fn empty_record_is_valid() {
        let rec = encode(&[], 1);
        assert!(matches!(decode(&rec), Decoded::Record { ref lines, .. } if lines.is_empty()));
    }
}
