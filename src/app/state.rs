//! state: the per-instance state file through which `relive notify` finds a running relive.
//!
//! One JSON file per running instance (`<port>.json`) in `$XDG_RUNTIME_DIR/relive`, or
//! `~/.local/state/relive` without it; the folder is `0700` and the file `0600`, because the
//! file holds the control token. Written once relive listens, removed when it stops; files
//! left by a crashed relive are recognised (their process is gone) and removed.
//!
//! Must never: be readable by other users, or point `relive notify` at a dead process.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a running instance publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub pid: u32,
    /// The URL to reach it (its front door).
    pub url: String,
    pub port: u16,
    /// Bearer token for `POST /__relive/notify`.
    pub control_token: String,
    /// The folder relive was started in.
    pub cwd: PathBuf,
    /// Milliseconds since the Unix epoch.
    pub started: u64,
    /// SHA-256 (hex) of the front door's certificate, when it serves HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
}

/// The folder state files live in.
pub fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("relive"))
}

/// Writes `instance`'s state file in `dir`; returns its path.
pub fn write(dir: &Path, instance: &Instance) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join(format!("{}.json", instance.port));
    let temp = dir.join(format!(".{}.{}.tmp", instance.port, instance.pid));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(serde_json::to_string_pretty(instance)?.as_bytes())?;
    file.sync_all()?;
    // Replaces a stale file from a crashed run in one step.
    std::fs::rename(&temp, &path)?;
    Ok(path)
}

/// Whether a process `pid` exists (signal 0 checks without sending; EPERM: it exists, as
/// another user's).
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Every live instance, newest first; stale files are removed on the way.
pub fn list(dir: &Path) -> Vec<Instance> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut instances: Vec<Instance> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let instance: Instance = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            if alive(instance.pid) {
                Some(instance)
            } else {
                let _ = std::fs::remove_file(e.path());
                None
            }
        })
        .collect();
    instances.sort_by_key(|i| std::cmp::Reverse(i.started));
    instances
}

/// The instance `relive notify` run in `cwd` means: one started in `cwd` or a folder above it
/// (the deepest such), else the newest.
pub fn pick(instances: &[Instance], cwd: &Path) -> Option<Instance> {
    instances
        .iter()
        .filter(|i| cwd.starts_with(&i.cwd))
        .max_by_key(|i| (i.cwd.components().count(), i.started))
        .or_else(|| instances.first())
        .cloned()
}

/// Removes the state file on drop (when relive stops).
pub struct Guard(pub PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(pid: u32, port: u16, cwd: &str, started: u64) -> Instance {
        Instance {
            pid,
            url: format!("http://localhost:{port}/"),
            port,
            control_token: "t".into(),
            cwd: PathBuf::from(cwd),
            started,
            cert_sha256: None,
        }
    }

    #[test]
    fn files_are_private_and_stale_ones_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("relive");
        let me = instance(std::process::id(), 4500, "/work", 1);
        let path = write(&state, &me).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        // A crashed run's file: its process does not exist.
        write(&state, &instance(u32::MAX - 1, 4501, "/work", 2)).unwrap();
        assert_eq!(list(&state), vec![me.clone()]);
        assert!(!state.join("4501.json").exists());
        // The same port again replaces the file.
        let again = instance(std::process::id(), 4500, "/work", 3);
        write(&state, &again).unwrap();
        assert_eq!(list(&state), vec![again]);
    }

    #[test]
    fn the_instance_for_this_folder_wins() {
        let all = vec![
            instance(1, 4502, "/elsewhere", 30),
            instance(2, 4501, "/work/site", 20),
            instance(3, 4500, "/work", 10),
        ];
        assert_eq!(pick(&all, Path::new("/work/site/css")).unwrap().port, 4501);
        assert_eq!(pick(&all, Path::new("/work/other")).unwrap().port, 4500);
        assert_eq!(pick(&all, Path::new("/tmp")).unwrap().port, 4502);
        assert_eq!(pick(&[], Path::new("/tmp")), None);
    }
}
