//! Notices the terminal going away (an SSH session dropped, a tmux pane or
//! window killed) without reading from it, so the TUI quits instead of
//! spinning.
//!
//! crossterm's Unix event source re-reads a hung-up terminal forever: `read`
//! answers 0 or EIO at once and its loop retries (crossterm-rs/crossterm#793,
//! open). The UI task then never returns from `EventStream::poll_next`, so it
//! burns a whole core and never gets to the SIGHUP, the flush or its deadline.
//! A watcher thread waits in poll(2) for the hangup, asking for no event
//! (POLLHUP and POLLERR are always reported, so it never takes a key), then
//! puts an empty pipe that never becomes readable in place of the terminal's
//! descriptor: crossterm's next read answers WouldBlock, its loop ends, and
//! the event loop quits as on SIGHUP, flushing what the writer holds.
//!
//! A backstop for what the swap cannot reach (crossterm reads its own
//! `/dev/tty` when stdin is not the terminal): a process still running
//! `backstop` after the hangup exits.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::output::pipe::wait_for_hangup;

/// Fires once when the terminal hangs up; `Err` if it can no longer tell (the
/// watcher could not poll), which is no reason to quit.
pub type Hangup = oneshot::Receiver<()>;

/// Starts the watcher thread on the terminal crossterm reads. `None` when
/// there is no terminal to watch.
pub fn watch(backstop: Duration) -> Option<Hangup> {
    let target = Target::find()?;
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("vmpulse-tty".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if !wait_for_hangup(target.fd()) {
                return; // dropping `tx` tells the loop to stop listening
            }
            if let Target::Stdin = target {
                if let Err(e) = silence_stdin() {
                    tracing::warn!("the terminal closed; cannot detach it from stdin: {e}");
                }
            }
            let _ = tx.send(());
            std::thread::sleep(backstop);
            tracing::error!(
                "the terminal closed {}s ago and the UI has not ended; exiting",
                backstop.as_secs()
            );
            std::process::exit(1);
        })
        .ok()?;
    Some(rx)
}

/// Which descriptor crossterm reads its events from (its `tty_fd`).
enum Target {
    /// stdin is the terminal: crossterm reads fd 0, which can be swapped.
    Stdin,
    /// crossterm opened `/dev/tty` itself; this is a second descriptor of it.
    DevTty(std::fs::File),
}

impl Target {
    fn find() -> Option<Self> {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 {
            return Some(Target::Stdin);
        }
        std::fs::File::open("/dev/tty").ok().map(Target::DevTty)
    }

    fn fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Target::Stdin => libc::STDIN_FILENO,
            Target::DevTty(f) => f.as_raw_fd(),
        }
    }
}

/// Puts the read end of a new, empty, non-blocking pipe on fd 0. Its write end
/// stays open (it is leaked on purpose), so reads answer EAGAIN, never EOF.
fn silence_stdin() -> io::Result<()> {
    let mut ends = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two descriptors it creates.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: dup2 replaces fd 0 atomically with a descriptor this function
    // owns; the old terminal description stays open through fds 1 and 2.
    let rc = unsafe { libc::dup2(ends[0], libc::STDIN_FILENO) };
    let err = io::Error::last_os_error();
    // SAFETY: ends[0] was created above and is not used after this.
    unsafe { libc::close(ends[0]) };
    if rc < 0 {
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pty pair: (master, slave), both owned by the test.
    fn pty() -> (RawFd, RawFd) {
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname on a descriptor owned here.
        unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(master >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
            let name = std::ffi::CStr::from_ptr(libc::ptsname(master)).to_owned();
            let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
            assert!(slave >= 0, "open the slave");
            (master, slave)
        }
    }

    #[test]
    fn a_live_terminal_is_no_hangup_and_a_closed_one_is() {
        let (master, slave) = pty();
        let waiter = std::thread::spawn(move || wait_for_hangup(slave));
        // Typing does not wake it: no event is asked for.
        // SAFETY: writes two bytes to the master this test owns.
        unsafe { libc::write(master, b"q\n".as_ptr().cast(), 2) };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "woke up on input");
        // SAFETY: closes the master this test owns: the slave hangs up.
        unsafe { libc::close(master) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !waiter.is_finished() {
            assert!(std::time::Instant::now() < deadline, "no hangup seen");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(waiter.join().unwrap());
        // SAFETY: closes the slave this test owns.
        unsafe { libc::close(slave) };
    }
}
