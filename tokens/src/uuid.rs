//! A UUID's canonical text (hyphenated, lower case: OP's user and note
//! ids) and its 16 bytes, which is how MA's session records and OP's
//! revocation view keep such an id compactly.

/// The 16 bytes of `s` when it is a UUID in its canonical form, else
/// `None` (capitals, braces or a missing hyphen are another spelling, kept
/// as text by whoever stores it, so the text comes back as it was).
#[must_use]
pub fn parse(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
        return None;
    }
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let hi = hex(*digits.next()?)?;
        let lo = hex(*digits.next()?)?;
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

/// The canonical text of 16 bytes.
#[must_use]
pub fn text(bytes: &[u8; 16]) -> String {
    let h = crate::digest::hex(bytes);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids_round_trip_and_other_spellings_do_not_parse() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        let b = parse(id);
        assert_eq!(b.map(|b| text(&b)).as_deref(), Some(id));
        assert_eq!(b.map(|b| b[0]), Some(0x55));
        for other in [
            "550E8400-E29B-41D4-A716-446655440000",
            "550e8400e29b41d4a716446655440000",
            "{550e8400-e29b-41d4-a716-446655440000}",
            "550e8400-e29b-41d4-a716-44665544000g",
            "550e8400-e29b-41d4+a716-446655440000",
            "550e8400-e29b-41d4-a716-4466554400000",
            "",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
