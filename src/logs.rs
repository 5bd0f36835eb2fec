//! Getting log lines to standard error without making requests wait or pay
//! for a thread's wake-up each.
//!
//! The server logs a line for every request. A line is formatted on the
//! thread that logs it and appended to a buffer in memory; a thread of its
//! own writes the buffer out. That thread is woken only when the buffer goes
//! from empty to not empty, and then waits `GATHER` before it writes, so
//! under load it makes a hundred writes a second whatever the request rate.
//! `tracing-appender`'s non-blocking writer, which this replaces, woke its
//! thread for nearly every line: at 45,000 requests a second that wake-up,
//! and the thread's own switches in and out, cost more than formatting the
//! line (measured in the README's Benchmarks section).
//!
//! If standard error cannot keep up, lines beyond [`LogWriter`]'s capacity
//! are dropped rather than requests stalled, and the next write says how
//! many. The [`FlushOnDrop`] guard writes out what is left at exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writing thread lets lines gather once the first arrives:
/// short enough that a log reads as live, long enough that a busy server
/// writes its lines in a few large calls.
const GATHER: Duration = Duration::from_millis(10);

/// Hands formatted lines to the writing thread; cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes out what is left when dropped, then stops the writing thread.
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    arrived: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    dropped: u64,
    /// Whether the writing thread is asleep until lines arrive: only then is
    /// it worth the system call that wakes it.
    idle: bool,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves plain bytes behind: still usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the writing thread on `out`, holding at most `capacity` bytes of
/// lines not yet written.
pub fn spawn<W: Write + Send + 'static>(
    out: W,
    capacity: usize,
) -> std::io::Result<(LogWriter, FlushOnDrop)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        arrived: Condvar::new(),
        capacity,
    });
    let thread = std::thread::Builder::new()
        .name("oauthd-log".into())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_out(&shared, out)
        })?;
    Ok((
        LogWriter {
            shared: Arc::clone(&shared),
        },
        FlushOnDrop {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writing thread: waits for lines, lets more gather, writes them all.
fn write_out<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.lines.is_empty() && pending.dropped == 0 && !pending.closing {
            pending.idle = true;
            pending = shared
                .arrived
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
            pending.idle = false;
        }
        let closing = pending.closing;
        if !closing {
            drop(pending);
            std::thread::sleep(GATHER);
            pending = shared.lock();
        }
        std::mem::swap(&mut pending.lines, &mut batch);
        let dropped = std::mem::take(&mut pending.dropped);
        drop(pending);
        // Standard error failing leaves nowhere to report it: the lines are lost.
        let _ = out.write_all(&batch);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "oauthd: {dropped} log lines dropped: standard error did not keep up"
            );
        }
        let _ = out.flush();
        batch.clear();
        if closing && shared.lock().lines.is_empty() {
            return;
        }
    }
}

impl Write for &LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.shared;
        let mut pending = shared.lock();
        if pending.lines.len() + line.len() > shared.capacity {
            pending.dropped += 1;
        } else {
            pending.lines.extend_from_slice(line);
        }
        if pending.idle {
            pending.idle = false;
            shared.arrived.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        let mut pending = self.shared.lock();
        pending.closing = true;
        self.shared.arrived.notify_one();
        drop(pending);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What the writing thread wrote, and in how many calls.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut recorded = self.0.lock().unwrap();
            recorded.0.extend_from_slice(bytes);
            recorded.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// As tracing's formatter does: the whole line in one write.
    fn log(writer: &LogWriter, line: &str) {
        let mut writer = writer;
        writer.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    impl Recorded {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().0.clone()).unwrap()
        }

        fn writes(&self) -> usize {
            self.0.lock().unwrap().1
        }
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_in_few_writes_and_the_guard_flushes_the_rest() {
        let out = Recorded::default();
        let (writer, guard) = spawn(out.clone(), 1 << 20).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for n in 0..2000 {
                        log(&writer, &format!("thread {thread} line {n}"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = out.text();
        for thread in 0..4 {
            let lines: Vec<_> = text
                .lines()
                .filter(|line| line.starts_with(&format!("thread {thread} ")))
                .collect();
            let expected: Vec<_> = (0..2000)
                .map(|n| format!("thread {thread} line {n}"))
                .collect();
            assert_eq!(lines, expected, "thread {thread}'s lines, in order");
        }
        assert_eq!(text.lines().count(), 8000);
        assert!(
            out.writes() < 800,
            "{} writes for 8000 lines written at once",
            out.writes()
        );
    }

    #[test]
    fn a_line_reaches_the_output_soon_without_a_flush() {
        let out = Recorded::default();
        let (writer, _guard) = spawn(out.clone(), 1 << 20).unwrap();
        log(&writer, "listening");
        let started = crate::clock::instant();
        while out.text().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the line was not written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(out.text(), "listening\n");
    }

    #[test]
    fn lines_beyond_the_capacity_are_dropped_and_counted() {
        let out = Recorded::default();
        // Room for one line: the writing thread lets GATHER pass before it
        // empties the buffer, and a hundred lines take far less.
        let (writer, guard) = spawn(out.clone(), 20).unwrap();
        for n in 0..100 {
            log(&writer, &format!("line {n:03} of 100"));
        }
        drop(guard);
        let text = out.text();
        let written = text
            .lines()
            .filter(|line| line.starts_with("line "))
            .count();
        let dropped: usize = text
            .lines()
            .filter_map(|line| line.strip_prefix("oauthd: "))
            .map(|rest| {
                assert!(rest.ends_with(" log lines dropped: standard error did not keep up"));
                rest.split(' ').next().unwrap().parse::<usize>().unwrap()
            })
            .sum();
        assert!(text.starts_with("line 000 of 100\n"), "{text}");
        assert!(dropped > 0, "{text}");
        assert_eq!(written + dropped, 100, "{text}");
    }
}
