//! Identifiers minted by the gateway.

/// A UUID v7 string for requests that arrive without an `x-request-id`: the time in
/// milliseconds, then random bits. Ids minted later sort later, so the indexes that take them
/// (spend records are unique by request id) grow at one end instead of at random places,
/// which keeps their pages in cache.
///
/// Uniqueness, not secrecy, is what matters here, so a fast thread-local generator is used
/// rather than the OS's CSPRNG (which costs a syscall per request).
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let mut bits = fastrand::u128(..);
    bits = (bits & !(((1 << 48) - 1) << 80)) | ((now_ms & ((1 << 48) - 1)) << 80);
    bits = (bits & !(0xf << 76)) | (0x7 << 76); // version 7
    bits = (bits & !(0x3 << 62)) | (0x2 << 62); // RFC 9562 variant
    let mut id = String::with_capacity(36);
    for index in 0..32 {
        if matches!(index, 8 | 12 | 16 | 20) {
            id.push('-');
        }
        let nibble = (bits >> (124 - index * 4)) & 0xf;
        id.push(HEX[nibble as usize] as char);
    }
    id
}

/// `call_` and 24 random letters and digits: an OpenAI-style tool call id, for providers whose
/// calls come without one.
pub fn new_tool_call_id() -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::with_capacity(29);
    id.push_str("call_");
    for _ in 0..24 {
        id.push(ALPHABET[fastrand::usize(..ALPHABET.len())] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v7_distinct_and_in_time_order() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(a.matches('-').count(), 4);
        assert!(a.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
        // The first 48 bits are the time in milliseconds.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let stamped = u64::from_str_radix(&a[..13].replace('-', ""), 16).unwrap();
        assert!(now_ms.abs_diff(stamped) < 60_000, "{a} {now_ms}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_request_id() > a);
    }
}
