//! The mock's simulated provider latency, for the benchmark: how long each answer waits, and a
//! wait that ends when it should.
//!
//! Both matter to what the benchmark reads as the gateway's added latency at 50 ms:
//! - tokio's timers tick every millisecond, so answers due within the same millisecond leave
//!   together. At 640 answers a second about half of them share a tick with another, where a
//!   real provider's, arriving at random instants, rarely come within the 0.1 ms a proxy spends
//!   on one. Whatever sits in front of the mock then serves small bursts, and its queueing is
//!   counted as its hop. [`sleep_precisely`] waits on a timerfd: the kernel's high-resolution
//!   timer, to within microseconds.
//! - Two runs compared by their medians must see the same latencies: independently drawn ones
//!   move a 3,000-answer median by about 0.1 ms, the size of what is measured. [`Spread`]
//!   draws them in blocks that each hold every step of the spread once, in a shuffled order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Answers per block; each block's latencies step evenly through the spread.
const BLOCK_BITS: u32 = 10;
const BLOCK: u64 = 1 << BLOCK_BITS;

/// Latencies of `latency` ± `jitter`, uniformly spread: within each block of [`BLOCK`] draws,
/// each of [`BLOCK`] evenly spaced steps once, in an order that changes from block to block.
#[derive(Debug, Default)]
pub(crate) struct Spread {
    draws: AtomicU64,
}

impl Spread {
    pub(crate) fn next(&self, latency: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return latency;
        }
        let draw = self.draws.fetch_add(1, Ordering::Relaxed);
        let step = shuffle(draw % BLOCK, draw / BLOCK);
        // The middle of the step's share of the spread: (step + ½) / BLOCK of it.
        let spread = 2 * jitter.as_nanos() as u64;
        let offset = Duration::from_nanos((2 * step + 1) * spread / (2 * BLOCK));
        (latency + offset).saturating_sub(jitter)
    }
}

/// A permutation of `0..BLOCK` chosen by `key`: rounds of steps that each map the block onto
/// itself one to one (xor with a constant, multiplication by an odd number, xor with a shift of
/// itself), so every step comes out exactly once.
fn shuffle(index: u64, key: u64) -> u64 {
    let mask = BLOCK - 1;
    let mut x = index;
    for round in 0..4 {
        let k = mix(key.wrapping_mul(4).wrapping_add(round));
        x = ((x ^ k) & mask).wrapping_mul(k | 1) & mask;
        x ^= x >> (BLOCK_BITS / 2);
    }
    x
}

/// splitmix64's finaliser: a key's bits spread over the whole word.
fn mix(seed: u64) -> u64 {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Waits `duration` on the kernel's high-resolution timer (a timerfd the runtime polls), not
/// on tokio's millisecond ticks. Falls back to tokio's timer, for what is left of the wait, if
/// the timerfd cannot be made or read.
pub(crate) async fn sleep_precisely(duration: Duration) {
    let deadline = tokio::time::Instant::now() + duration;
    if let Some(timer) = armed_timer(duration) {
        while let Ok(mut ready) = timer.readable().await {
            let mut expirations = [0u8; 8];
            match rustix::io::read(timer.get_ref(), &mut expirations) {
                Ok(_) => return,
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(_) => break,
            }
        }
    }
    tokio::time::sleep_until(deadline).await;
}

fn armed_timer(duration: Duration) -> Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    // A zero expiry would disarm the timer rather than fire it at once.
    let duration = duration.max(Duration::from_nanos(1));
    let timer = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .ok()?;
    let expiry = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec::try_from(duration).ok()?,
    };
    timerfd_settime(&timer, TimerfdTimerFlags::empty(), &expiry).ok()?;
    // SAFETY: the AsyncFd owns the timer's OwnedFd, which stays open, and is the same
    // descriptor, until the AsyncFd is dropped.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(timer, tokio::io::Interest::READABLE)
    }
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_holds_every_step_once() {
        for key in [0, 1, 7, 1_000_003] {
            let mut seen: Vec<u64> = (0..BLOCK).map(|index| shuffle(index, key)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..BLOCK).collect::<Vec<_>>(), "block {key}");
        }
        let first: Vec<u64> = (0..BLOCK).map(|index| shuffle(index, 0)).collect();
        let second: Vec<u64> = (0..BLOCK).map(|index| shuffle(index, 1)).collect();
        assert_ne!(first, second, "blocks are shuffled differently");
    }

    #[test]
    fn latencies_spread_evenly_around_the_latency() {
        let spread = Spread::default();
        let (latency, jitter) = (Duration::from_millis(50), Duration::from_millis(5));
        let mut draws: Vec<Duration> = (0..BLOCK).map(|_| spread.next(latency, jitter)).collect();
        draws.sort_unstable();
        assert!(draws[0] >= Duration::from_millis(45) && draws[0] < Duration::from_micros(45_010));
        let last = draws[BLOCK as usize - 1];
        assert!(last <= Duration::from_millis(55) && last > Duration::from_micros(54_990));
        let median = draws[BLOCK as usize / 2];
        assert!(
            median.abs_diff(latency) < Duration::from_micros(10),
            "{median:?}"
        );
        assert_eq!(spread.next(latency, Duration::ZERO), latency);
    }

    #[tokio::test]
    async fn a_precise_sleep_waits_its_whole_duration_on_a_timerfd() {
        assert!(armed_timer(Duration::from_millis(1)).is_some());
        for micros in [300, 1_500, 2_250] {
            let duration = Duration::from_micros(micros);
            let started = std::time::Instant::now();
            sleep_precisely(duration).await;
            assert!(started.elapsed() >= duration, "{micros} µs");
        }
    }
}
