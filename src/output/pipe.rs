//! Noticing that the reader of stdout went away (`vmpulse --output - | head -1`),
//! so that vmpulse exits at once like the Unix tools beside it, instead of
//! collecting and dropping lines until someone sends a signal.

use std::future::Future;
use std::os::fd::AsRawFd;

/// Resolves when stdout is a pipe or socket whose reading end was closed.
/// Never resolves for a terminal or a file (they do not close under us).
pub fn stdout_closed() -> impl Future<Output = ()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    if is_pipe_or_socket(std::io::stdout().as_raw_fd()) {
        // A plain thread, not spawn_blocking: it waits in poll(2) for the whole run
        // and must not hold up the runtime's shutdown.
        let spawned = std::thread::Builder::new()
            .name("stdout-watch".into())
            .spawn(move || {
                if wait_for_hangup(std::io::stdout().as_raw_fd()) {
                    let _ = tx.send(());
                }
            });
        if let Err(e) = spawned {
            tracing::debug!("cannot watch stdout: {e}");
        }
    }
    async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn is_pipe_or_socket(fd: i32) -> bool {
    // SAFETY: fstat only writes into the zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    matches!(st.st_mode & libc::S_IFMT, libc::S_IFIFO | libc::S_IFSOCK)
}

/// Blocks until the descriptor reports an error or hang-up (the reader closed, a
/// terminal gone); `false` if it cannot tell (poll failed, not an open descriptor).
/// poll(2) always reports POLLERR and POLLHUP, so no event needs asking for, and no
/// input is consumed. Also `ui::hangup`'s wait on the terminal.
pub(crate) fn wait_for_hangup(fd: i32) -> bool {
    loop {
        let mut p = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, infinite timeout.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if p.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return true;
        }
        if p.revents & libc::POLLNVAL != 0 {
            return false;
        }
    }
}
