//! Child processes of the separate-process mode, and the clock they share.
//!
//! Every child is started with `kill_on_drop` (SIGKILL by PID when its handle is dropped:
//! the phase ended, failed or was interrupted) and with `PR_SET_PDEATHSIG` (the kernel sends
//! it SIGKILL if this process dies first, even by SIGKILL). The bench's own children also
//! exit when their stdin closes.

use std::time::{Duration, Instant};

use tokio::process::Command;

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on the machine, so a send
/// stamped by the load generator and an arrival stamped by the receiver can be subtracted.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if rc != 0 {
        return 0;
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// Converts `Instant`s of this process to [`monotonic_ns`].
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    ns: u64,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            ns: monotonic_ns(),
        }
    }

    pub fn ns(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.ns.saturating_add(after.as_nanos() as u64),
            None => self
                .ns
                .saturating_sub(self.instant.duration_since(at).as_nanos() as u64),
        }
    }
}

/// The span between two [`monotonic_ns`] readings (zero if `end` is earlier).
pub fn between(start_ns: u64, end_ns: u64) -> Duration {
    Duration::from_nanos(end_ns.saturating_sub(start_ns))
}

/// Makes `command` a well-behaved child: killed when its handle is dropped, and when this
/// process dies.
pub fn tie_to_parent(command: &mut Command) {
    command.kill_on_drop(true);
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Asks process `pid` to stop (SIGTERM), as an init system would.
pub fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// `VmHWM` (peak resident set size) of process `pid`, in bytes.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    crate::system::vm_hwm(&status)
}

/// Exits this (child) process once its stdin closes: the parent is gone or done.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        loop {
            match std::io::Read::read(&mut std::io::stdin(), &mut sink) {
                Ok(0) | Err(_) => std::process::exit(3),
                Ok(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_converts_instants() {
        let clock = Clock::now();
        let later = clock.instant + Duration::from_millis(5);
        assert_eq!(clock.ns(later) - clock.ns, 5_000_000);
        let earlier = clock.instant - Duration::from_millis(1);
        assert_eq!(clock.ns - clock.ns(earlier), 1_000_000);
        assert!(monotonic_ns() >= clock.ns);
        assert_eq!(between(10, 5), Duration::ZERO);
    }
}
