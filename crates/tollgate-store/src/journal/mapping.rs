//! A segment file's disk space, allocated up front and mapped into memory, so that appending
//! a record is a copy rather than a system call.
//!
//! A record copied into a shared mapping is in the page cache the moment the copy ends, as
//! it would be after a `write`: it survives the process being killed. The blocks are allocated
//! before the file is mapped, because a store into a mapped page the file system has no room
//! for kills the process with SIGBUS, where a `write` would have returned an error.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

/// `len` bytes of `file`, from its start, allocated on disk and mapped shared and writable.
pub(super) struct Mapping {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the only access is
// `Mapping::copy_in`, whose callers write disjoint ranges.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Allocates `len` bytes of disk for `file` (which it extends to `len`) and maps them.
    /// A full disk is an error here, never a signal later.
    pub(super) fn new(file: &File, len: usize) -> io::Result<Mapping> {
        assert!(len > 0, "a segment has room for at least one record");
        allocate(file, len as u64)?;
        // SAFETY: a new mapping at an address the kernel chooses (a null hint), so it overlaps
        // no memory Rust knows of; it covers blocks allocated above, within the file's length.
        let start = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                0,
            )
        }?;
        let start = NonNull::new(start.cast::<u8>()).expect("mmap returns no null mapping");
        Ok(Mapping { start, len })
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` to `offset`. The caller must have reserved the range for itself: no
    /// other copy may write any byte of it.
    pub(super) fn copy_in(&self, offset: usize, bytes: &[u8]) {
        let end = offset.checked_add(bytes.len()).expect("offset overflow");
        assert!(end <= self.len, "copy past the end of the mapping");
        // SAFETY: the range is inside the mapping (checked above), no other copy writes it
        // (the caller's reservation), and no Rust reference points into the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.start.as_ptr().add(offset),
                bytes.len(),
            );
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `mmap` with this start and length, and is dropped once.
        // Nothing can copy into it any more: a copy needs a borrow of this value.
        let unmapped = unsafe { rustix::mm::munmap(self.start.as_ptr().cast(), self.len) };
        // munmap refuses only arguments that mmap did not return, which cannot happen here.
        debug_assert!(unmapped.is_ok(), "munmap: {unmapped:?}");
    }
}

/// Gives `file` `len` bytes of disk (and that length). A file system without `fallocate`
/// gets them written as zeros, which allocates them just the same.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Err(rustix::io::Errno::OPNOTSUPP) => write_zeros(file, len),
        result => result.map_err(io::Error::from),
    }
}

fn write_zeros(file: &File, len: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut offset = 0;
    while offset < len {
        let chunk = (len - offset).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..chunk], offset)?;
        offset += chunk as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn zeros_written_where_fallocate_is_missing_allocate_the_disk() {
        let path = std::env::temp_dir().join(format!("tollgate-zeros-{}", fastrand::u64(..)));
        let file = File::create_new(&path).unwrap();
        write_zeros(&file, 200_000).unwrap();
        let metadata = file.metadata().unwrap();
        assert_eq!(metadata.len(), 200_000);
        assert!(
            metadata.blocks() * 512 >= 200_000,
            "{} blocks",
            metadata.blocks()
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn copies_land_in_the_file() {
        let path = std::env::temp_dir().join(format!("tollgate-mapping-{}", fastrand::u64(..)));
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mapping = Mapping::new(&file, 4096).unwrap();
        mapping.copy_in(10, b"record\n");
        drop(mapping);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(&bytes[10..17], b"record\n");
        assert!(
            bytes[..10]
                .iter()
                .chain(&bytes[17..])
                .all(|&byte| byte == 0)
        );
        std::fs::remove_file(&path).unwrap();
    }
}
