//! A real pseudo-terminal for interactive tests: the binary runs in a detached tmux session on a
//! private tmux server; tests type with `send-keys` and read the screen with `capture-pane`.
//!
//! Each `Tty` has its own server socket (`tmux -S <its temp dir>/tmux.sock`), which its `Drop`
//! kills, so no session outlives its test and parallel tests never see each other's screens.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::BIN;

/// How long a test waits for the screen to show something before it fails.
const WAIT: Duration = Duration::from_secs(20);

pub struct Tty {
    socket: String,
    /// Holds the tmux config file and the exit status; removed on drop.
    _conf: tempfile::TempDir,
}

impl Tty {
    /// Runs `stackgen ARGS` in `dir` on an 80x24 terminal (the smallest usual one: what fits
    /// there fits everywhere). The pane stays after the program
    /// exits (`remain-on-exit`), so its last screen can still be read. The variables reach the
    /// pane because this call starts the (private) tmux server, which inherits them.
    pub fn start(dir: &Path, args: &[&str]) -> Tty {
        let conf = tempfile::tempdir().unwrap();
        let conf_file = conf.path().join("tmux.conf");
        std::fs::write(
            &conf_file,
            "set -g remain-on-exit on\nset -g history-limit 5000\n",
        )
        .unwrap();
        // The socket lives in the test's own temporary directory, so it goes with it.
        let socket = conf.path().join("tmux.sock").display().to_string();
        let status = Command::new("tmux")
            .args(["-S", &socket, "-f"])
            .arg(&conf_file)
            .args(["new-session", "-d", "-x", "80", "-y", "24", "-s", "t", "-c"])
            .arg(dir)
            // The status goes to a file through `sh`: tmux's own #{pane_dead_status} stayed
            // empty now and then under parallel load. The program and its arguments are
            // positional parameters, never spliced into the script.
            .args([
                "--",
                "sh",
                "-c",
                r#""$0" "$@"; echo $? > "$STACKGEN_TTY_STATUS""#,
            ])
            .arg(BIN)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .env("TERM", "xterm-256color")
            .env("STACKGEN_TTY_STATUS", conf.path().join("status"))
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Tty {
            socket,
            _conf: conf,
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole screen and scrollback, as text.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "t"])
    }

    /// Only the rows on screen now (no scrollback), one string per row, as the operator sees them.
    pub fn visible(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The pane's (columns, rows).
    pub fn size(&self) -> (usize, usize) {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "t",
            "#{pane_width} #{pane_height}",
        ]);
        let mut it = out.split_whitespace().map(|n| n.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }

    /// Waits until the screen shows `needle`; fails the test with the screen otherwise.
    /// Waits until the screen shows every needle at once (a prompt's rows are drawn one by one,
    /// so one needle appearing does not mean the others have).
    pub fn wait_for_all(&self, needles: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                start.elapsed() < WAIT,
                "the terminal never showed all of {needles:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                start.elapsed() < WAIT,
                "the terminal never showed {needle:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Named keys (`Enter`, `Down`, `Space`, `C-c`), one tmux key name each.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Literal text, as if typed.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Waits for the program to exit and returns its exit status.
    pub fn exit_status(&self) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(self._conf.path().join("status")) {
                if let Ok(code) = text.trim().parse() {
                    return code;
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "the program did not exit; the terminal shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .output();
    }
}

/// True when tmux works here; fails in CI when it does not (see `have`).
pub fn have_tmux(test: &str) -> bool {
    super::have("tmux", &["-V"], test)
}
