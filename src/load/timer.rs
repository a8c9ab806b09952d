//! A sub-millisecond async sleep for the open-loop dispatcher.
//!
//! tokio's timer wheel has a 1 ms resolution, as large as the whole send-lag budget. On
//! Linux this uses a `timerfd` (timerfd_create(2)) registered with the runtime's reactor:
//! the kernel's high-resolution timer wakes the same thread that sends the requests, so
//! precise scheduling costs no extra thread and no cross-thread wake-up. Elsewhere it falls
//! back to tokio's sleep. Must only be used from inside a tokio runtime.

use std::time::Instant;

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub(crate) struct PreciseTimer {
        fd: AsyncFd<OwnedFd>,
    }

    impl PreciseTimer {
        pub fn new() -> io::Result<Self> {
            // SAFETY: timerfd_create takes no pointers; a non-negative return is a fresh fd
            // that nothing else owns.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a valid fd owned by nobody else (see above).
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an OwnedFd stays open and returns the same fd until it is dropped,
            // which happens only with the AsyncFd that owns it.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(|err| err.into_parts().1)?;
            Ok(Self { fd })
        }

        pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(());
            };
            if wait.is_zero() {
                return Ok(());
            }
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: wait.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                    // Below 1e9, so it fits every platform's c_long.
                    tv_nsec: wait.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: `spec` is a valid itimerspec and the old-value pointer may be null.
            let set = unsafe {
                libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if set < 0 {
                return Err(io::Error::last_os_error());
            }
            loop {
                let mut guard = self.fd.readable().await?;
                // A readable timerfd holds the 8-byte expiration count; reading it re-arms
                // readiness. EAGAIN (an old readiness) makes try_io clear it and wait again.
                let read = guard.try_io(|fd| {
                    let mut expirations = [0u8; 8];
                    // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                    let n =
                        unsafe { libc::read(fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
                match read {
                    Ok(result) => {
                        // One read drains the timer, so the fd is no longer readable; saying
                        // so now saves a failing read before the next wait.
                        guard.clear_ready();
                        return result;
                    }
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::time::Instant;

    pub(crate) struct PreciseTimer;

    impl PreciseTimer {
        pub fn new() -> io::Result<Self> {
            Ok(Self)
        }

        pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
            tokio::time::sleep_until(deadline.into()).await;
            Ok(())
        }
    }
}

pub(crate) use imp::PreciseTimer;

/// Sleeps until `deadline` with the precise timer, or tokio's if it failed.
pub(crate) async fn sleep_until(timer: &mut Option<PreciseTimer>, deadline: Instant) {
    if let Some(precise) = timer {
        if precise.sleep_until(deadline).await.is_ok() {
            return;
        }
        *timer = None;
    }
    tokio::time::sleep_until(deadline.into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_close_to_sub_millisecond_deadlines() {
        let mut timer = Some(PreciseTimer::new().unwrap());
        let mut late = Vec::new();
        for _ in 0..200 {
            let deadline = Instant::now() + Duration::from_micros(200);
            sleep_until(&mut timer, deadline).await;
            let now = Instant::now();
            assert!(now >= deadline);
            late.push(now - deadline);
        }
        late.sort();
        // tokio's own timer would be ~1 ms late every time; allow for a busy machine.
        assert!(
            late[100] < Duration::from_micros(500),
            "median lateness {:?}",
            late[100]
        );
        assert!(timer.is_some());
    }
}
