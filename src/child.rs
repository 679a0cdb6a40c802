//! child: runs a command in its own process group — the dev server (`relive -- CMD`) and the
//! build (`--build CMD`) — reports each line it prints and how it ended, and stops the whole
//! group.
//!
//! Output is read raw: a line that is not UTF-8 is shown lossily, a line longer than
//! [`MAX_LINE`] is shown once, cut (its rest is read and dropped), and the pipes are drained to the end, so no output can block the
//! command. After the command exits, the pipes are read until they go quiet (a process it left
//! behind may hold them open).
//!
//! Uses: nothing.
//!
//! Must never: leave the command or anything it started running once it is stopped or dropped
//! (the group gets SIGTERM, and SIGKILL after the grace period), or let it read the terminal.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Longest output line kept whole; longer ones are cut.
pub const MAX_LINE: usize = 8 * 1024;
/// After the command exits, a pipe quiet for this long is given up (something it started holds
/// it open).
const QUIET_AFTER_EXIT: Duration = Duration::from_millis(500);

/// What a running command reports.
#[derive(Debug)]
pub enum Report {
    Line(String),
    Exited(std::io::Result<ExitStatus>),
}

/// A running command, in its own process group.
pub struct Child {
    group: Pid,
    reports: mpsc::Receiver<Report>,
}

impl Child {
    /// Starts `process` (stdin closed, output piped, in a new process group).
    pub fn spawn(mut process: Command) -> std::io::Result<Child> {
        process
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = process.spawn()?;
        let id = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| {
                std::io::Error::other("the command exited before it could be followed")
            })?;
        let (sender, reports) = mpsc::channel(256);
        let (exited_sender, exited) = watch::channel(false);
        let readers = [
            tokio::spawn(forward_lines(
                child.stdout.take(),
                sender.clone(),
                exited.clone(),
            )),
            tokio::spawn(forward_lines(child.stderr.take(), sender.clone(), exited)),
        ];
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = exited_sender.send(true);
            // The last lines arrive before the exit.
            for reader in readers {
                let _ = reader.await;
            }
            let _ = sender.send(Report::Exited(status)).await;
        });
        Ok(Child {
            group: Pid::from_raw(id),
            reports,
        })
    }

    /// The next line or the exit; `None` after the exit.
    pub async fn next(&mut self) -> Option<Report> {
        self.reports.recv().await
    }

    /// Sends SIGTERM to whatever is left of the group (after the command itself exited, what
    /// it started would hold its port or files).
    pub fn end_group(&self) {
        // ESRCH (the group is already gone) is the usual, happy case.
        let _ = killpg(self.group, Signal::SIGTERM);
    }

    /// Stops the group: SIGTERM, then SIGKILL for whatever is left after `grace`. Lines it
    /// prints meanwhile go to `on_line`.
    pub async fn stop(mut self, grace: Duration, mut on_line: impl FnMut(&str)) -> Stopped {
        self.end_group();
        let deadline = tokio::time::Instant::now() + grace;
        let mut leader_exited = false;
        loop {
            if leader_exited && killpg(self.group, None).is_err() {
                return Stopped::InTime;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                report = self.reports.recv(), if !leader_exited => match report {
                    Some(Report::Line(line)) => on_line(&line),
                    Some(Report::Exited(_)) | None => leader_exited = true,
                },
                _ = tokio::time::sleep(Duration::from_millis(50)), if leader_exited => {}
            }
        }
        let _ = killpg(self.group, Signal::SIGKILL);
        Stopped::Killed
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.end_group();
    }
}

/// How [`Child::stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    InTime,
    /// The grace period passed: the group got SIGKILL.
    Killed,
}

/// How a run ended, in words: `exited with code 1`, `was killed by SIGSEGV`.
pub fn describe_exit(status: &std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => match Signal::try_from(signal) {
                Ok(signal) => format!("was killed by {}", signal.as_str()),
                Err(_) => format!("was killed by signal {signal}"),
            },
            (None, None) => "exited".to_owned(),
        },
        Err(error) => format!("could not be waited for: {error}"),
    }
}

/// Sends each line read from `pipe` (lossy UTF-8, cut at [`MAX_LINE`], `\r` dropped) until the
/// pipe ends, or goes quiet once the command has `exited`.
async fn forward_lines(
    pipe: Option<impl AsyncRead + Unpin>,
    reports: mpsc::Sender<Report>,
    mut exited: watch::Receiver<bool>,
) {
    let Some(mut pipe) = pipe else { return };
    let mut pending: Vec<u8> = Vec::new();
    // The line being read was already sent cut: the rest of it is dropped, up to its end.
    let mut cut = false;
    let mut chunk = vec![0u8; 8192];
    loop {
        let read = if *exited.borrow() {
            match tokio::time::timeout(QUIET_AFTER_EXIT, pipe.read(&mut chunk)).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                read = pipe.read(&mut chunk) => read,
                // `read` is cancel-safe: nothing is lost by asking again.
                _ = exited.changed() => continue,
            }
        };
        let read = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..read]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if std::mem::take(&mut cut) {
                continue;
            }
            if reports.send(Report::Line(to_line(&line))).await.is_err() {
                return;
            }
        }
        if pending.len() > MAX_LINE {
            if !cut && reports.send(Report::Line(to_line(&pending))).await.is_err() {
                return;
            }
            cut = true;
            pending.clear();
        }
    }
    if !pending.is_empty() && !cut {
        let _ = reports.send(Report::Line(to_line(&pending))).await;
    }
}

/// What ends a line that was cut at [`MAX_LINE`].
const CUT: &str = " …";

/// One line of output as text: lossy UTF-8 without its line ending, and at most [`MAX_LINE`]
/// bytes (a longer one is cut and ends with [`CUT`]).
fn to_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r']);
    if text.len() <= MAX_LINE {
        return text.to_owned();
    }
    let mut end = MAX_LINE - CUT.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    async fn run(script: &str) -> (Vec<String>, String) {
        let mut child = Child::spawn(sh(script)).unwrap();
        let mut lines = Vec::new();
        loop {
            match child.next().await {
                Some(Report::Line(line)) => lines.push(line),
                Some(Report::Exited(status)) => return (lines, describe_exit(&status)),
                None => panic!("no exit reported"),
            }
        }
    }

    #[test]
    fn lines_are_cut_and_lossy() {
        assert_eq!(to_line(b"hello\r\n"), "hello");
        assert_eq!(to_line(b"caf\xe9\n"), "caf\u{fffd}");
        let long = to_line(&vec![b'x'; MAX_LINE * 2]);
        assert_eq!(long.len(), MAX_LINE);
        assert!(long.ends_with(CUT));
        assert_eq!(to_line(&vec![b'x'; MAX_LINE]).len(), MAX_LINE, "not cut");
        let wide = to_line("é".repeat(MAX_LINE).as_bytes());
        assert!(
            wide.len() <= MAX_LINE && wide.ends_with(CUT),
            "cut between characters"
        );
    }

    #[tokio::test]
    async fn invalid_utf8_then_a_megabyte_is_read_to_the_last_line() {
        let (lines, exit) = run("printf 'bad \\377\\376 bytes\\n'; \
             i=0; while [ $i -lt 16384 ]; do \
               echo \"line $i ...........................................................\"; \
               i=$((i+1)); done; \
             echo 'on stderr' >&2; echo 'the last line'; exit 3")
        .await;
        assert_eq!(exit, "exited with code 3");
        assert_eq!(lines[0], "bad \u{fffd}\u{fffd} bytes");
        assert_eq!(lines.len(), 16384 + 3, "every line arrives");
        assert!(lines.contains(&"on stderr".to_owned()));
        assert_eq!(lines.last().unwrap(), "the last line");
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_a_last_line_without_newline_kept() {
        let (lines, _) =
            run("head -c 1048576 /dev/zero | tr '\\0' x; echo; echo next; printf 'end'").await;
        assert_eq!(lines.len(), 3, "a long line is sent once, cut");
        assert_eq!(lines[0].len(), MAX_LINE);
        assert!(lines[0].ends_with(CUT));
        assert_eq!(lines[1..], ["next", "end"]);
    }

    #[tokio::test]
    async fn a_process_left_holding_the_pipe_does_not_hold_the_exit() {
        let (lines, exit) = run("(sleep 30 &) ; echo started").await;
        assert_eq!(lines, vec!["started".to_owned()]);
        assert_eq!(exit, "exited with code 0");
    }

    #[tokio::test]
    async fn stop_ends_the_whole_group_even_when_sigterm_is_ignored() {
        let mut child =
            Child::spawn(sh("trap '' TERM; echo ready; while :; do sleep 1; done")).unwrap();
        assert!(matches!(child.next().await, Some(Report::Line(l)) if l == "ready"));
        let group = child.group;
        let stopped = child.stop(Duration::from_millis(300), |_| {}).await;
        assert_eq!(stopped, Stopped::Killed);
        // The group is gone once its members are reaped; SIGKILL leaves nothing to wait for.
        let mut gone = false;
        for _ in 0..100 {
            if killpg(group, None).is_err() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the group outlived SIGKILL");
    }
}
