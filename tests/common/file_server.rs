//! Python's own file server (`python3 -m http.server`) as a dev server for proxy-mode tests, on
//! a port the test chooses, so it can be stopped and started again on the same address.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::PATIENCE;

/// A running file server, killed on drop.
pub struct FileServer {
    child: Child,
}

impl FileServer {
    /// Whether python3 is here; tests say so loudly (and fail under `CI=true`) when it is not.
    pub fn available() -> bool {
        let present = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        super::require_tool("python3", present)
    }

    /// Starts serving `dir` on `127.0.0.1:port`, without waiting for it to listen.
    pub fn spawn(dir: &Path, port: u16) -> FileServer {
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        FileServer { child }
    }

    /// Starts serving `dir` on `127.0.0.1:port` and waits until it accepts connections.
    pub fn start(dir: &Path, port: u16) -> FileServer {
        let server = FileServer::spawn(dir, port);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the file server never listened");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        server
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
