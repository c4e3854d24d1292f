//! One spool record (pure): a batch of lines with its length and checksum.
//!
//! Layout, little-endian: `len u32 | crc u32 | lines u32 | spooled_at_ms u64 |
//! payload`, where `payload` is `len` bytes of lines, each ended by `\n`, and
//! `crc` is the CRC-32 of everything after it (`lines`, `spooled_at_ms`,
//! payload). A record cut short (SIGKILL or power loss mid-write) or with a
//! wrong checksum is reported, never returned as lines.

/// Bytes before the payload.
pub const HEADER: usize = 20;
/// Larger lengths are corruption, not data (a batch is a few MiB at most).
const MAX_PAYLOAD: usize = 256 << 20;

/// Encodes `lines` (none may contain `\n`) as one record.
pub fn encode(lines: &[String], spooled_at_ms: u64) -> Vec<u8> {
    let payload_len: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut rec = Vec::with_capacity(HEADER + payload_len);
    rec.extend_from_slice(&(payload_len as u32).to_le_bytes());
    rec.extend_from_slice(&[0; 4]);
    rec.extend_from_slice(&(lines.len() as u32).to_le_bytes());
    rec.extend_from_slice(&spooled_at_ms.to_le_bytes());
    for l in lines {
        rec.extend_from_slice(l.as_bytes());
        rec.push(b'\n');
    }
    let crc = crc32fast::hash(&rec[8..]);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    rec
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
    /// The bytes end before the record does (a torn tail).
    Torn,
    /// Wrong checksum, impossible length or line count, or not UTF-8.
    Corrupt,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Decodes the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < HEADER {
        return Decoded::Torn;
    }
    let len = u32_at(buf, 0) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt;
    }
    let size = HEADER + len;
    if buf.len() < size {
        return Decoded::Torn;
    }
    if crc32fast::hash(&buf[8..size]) != u32_at(buf, 4) {
        return Decoded::Corrupt;
    }
    let count = u32_at(buf, 8) as usize;
    let mut at = [0u8; 8];
    at.copy_from_slice(&buf[12..20]);
    let Ok(text) = std::str::from_utf8(&buf[HEADER..size]) else {
        return Decoded::Corrupt;
    };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.len() != count || !text.ends_with('\n') && !text.is_empty() {
        return Decoded::Corrupt;
    }
    Decoded::Record {
        size,
        lines,
        spooled_at_ms: u64::from_le_bytes(at),
    }
}

/// Reads just the length of the record at the start of `header` (for
/// callers that read the header first, then the rest).
pub fn total_size(header: &[u8; HEADER]) -> usize {
    HEADER + (u32_at(header, 0) as usize).min(MAX_PAYLOAD + 1)
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
        let mut h = [0u8; HEADER];
        h.copy_from_slice(&rec[..HEADER]);
        assert_eq!(total_size(&h), rec.len());
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
        for i in 4..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x01;
            assert_eq!(decode(&bad), Decoded::Corrupt, "flip at {i}");
        }
        // Zeros where a header should be (a file extended by a power loss).
        assert_eq!(decode(&[0u8; 64]), Decoded::Corrupt);
    }

    #[test]
    fn empty_record_is_valid() {
        let rec = encode(&[], 1);
        assert!(matches!(decode(&rec), Decoded::Record { ref lines, .. } if lines.is_empty()));
    }
}
