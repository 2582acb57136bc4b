//! Identifiers minted by the gateway.

/// A random UUID v4 string for requests that arrive without an `x-request-id`.
///
/// Uniqueness, not secrecy, is what matters here, so a fast thread-local generator is used
/// rather than the OS's CSPRNG (which costs a syscall per request).
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits = fastrand::u128(..);
    bits = (bits & !(0xf << 76)) | (0x4 << 76); // version 4
    bits = (bits & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
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
    fn request_ids_are_uuid_v4_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(a.matches('-').count(), 4);
        assert!(a.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    }
}
