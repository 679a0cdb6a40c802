//! Waiting for a spawned relive to listen, for the benchmarks that start the real binary.

use std::io::{BufRead, BufReader};
use std::process::Child;

/// Reads `child`'s stderr (JSON logs) until its `listening` event and returns the port; the rest
/// of its output is drained on a thread so relive never blocks on a full pipe. Panics if relive
/// ends before listening.
pub fn wait_listening(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let status = child.wait();
            panic!("relive ended before listening: {status:?}");
        };
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
            && json["event"] == "listening"
        {
            std::thread::spawn(move || for _ in lines {});
            return json["port"].as_u64().expect("listening has a port") as u16;
        }
    }
}
