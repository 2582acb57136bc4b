//! Writes OpenAI's `o200k_base` vocabulary into `OUT_DIR` in the compact form
//! `tokens::o200k` reads in place: tiktoken-rs holds three copies of it in hash maps (about
//! 45 MB once loaded), while this layout is 2.3 MB of read-only data in the binary.
//!
//! Layout (little-endian u32s): token count `n`, then `n + 1` offsets into the byte area, then
//! the byte area; token `r` (its rank) is `bytes[offsets[r]..offsets[r + 1]]`.

use std::path::PathBuf;

fn main() {
    let encoding = tiktoken_rs::o200k_base().expect("tiktoken-rs loads o200k_base");
    let mut bytes = Vec::new();
    let mut offsets = vec![0u32];
    // Ordinary tokens have the ranks 0..n with no gap; the special tokens sit above them.
    while let Ok(token) = encoding.decode_bytes(&[offsets.len() as u32 - 1]) {
        bytes.extend_from_slice(&token);
        offsets.push(bytes.len() as u32);
    }
    let count = offsets.len() as u32 - 1;
    assert!(
        count > 199_000,
        "o200k_base has about 200k tokens, read {count}"
    );

    let mut blob = Vec::with_capacity(4 * (offsets.len() + 1) + bytes.len());
    blob.extend_from_slice(&count.to_le_bytes());
    for offset in offsets {
        blob.extend_from_slice(&offset.to_le_bytes());
    }
    blob.extend_from_slice(&bytes);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("o200k_base.bin"), blob).expect("OUT_DIR is writable");
    std::fs::write(
        out.join("o200k_base.pattern"),
        tiktoken_rs::O200K_BASE_PAT_STR,
    )
    .expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
}
