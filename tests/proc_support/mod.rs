//! `streamwire` child processes for the tests that run the real binary: stderr collected line
//! by line, bounded waits, Ctrl-C, and the figures of `streamwire run`'s status lines.
#![allow(dead_code)]

use parking_lot::Mutex;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_streamwire");

/// A `streamwire` child process whose stderr is collected line by line.
pub struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .env_remove(streamwire::preset::TOKEN_ENV);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::start(cmd)
    }

    /// Start `cmd` (a `streamwire` command line, possibly behind `nsenter`; its environment
    /// as the caller set it).
    pub fn start(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("streamwire starts");
        let err = child.stderr.take().expect("piped stderr");
        let stderr: Arc<Mutex<String>> = Arc::default();
        let s2 = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = s2.lock();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// Wait (bounded) until stderr contains `needle`.
    pub async fn wait_for(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.stderr().contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "no `{needle}` within {timeout:?}; stderr so far:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: sending SIGKILL to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    }

    pub fn interrupt(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: sending SIGINT to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    }

    /// Wait (bounded) for the exit; kills the process and fails on timeout.
    pub async fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(r) = self.reader.take() {
                    r.join().unwrap();
                }
                return (status, self.stderr());
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "streamwire did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The largest "N frames received" of the status lines so far.
pub fn received_frames(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| {
            let (before, _) = l.split_once(" frames received")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}
