//! sync: many devices, one preview (`--sync`). What a person does in one tab (scroll, a click, a
//! typed value, a submit, back and forward) arrives here as a `sync` message and is relayed to
//! every tab as a transient `sync` event; the tabs do it too, and ignore their own (each names
//! itself with a random `device` id). Also the switch that turns mirroring on and off for all,
//! and the dashboard's "reload" and "navigate all devices".
//!
//! Must never: keep a mirrored action (nothing is replayed to a tab that connects later), relay
//! one while mirroring is off, or relay what is not one of the known actions.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::hub::Hub;
use crate::hub::protocol::{ClientMessage, Event};

/// The actions a tab may mirror (the client checks each field again before acting).
const ACTIONS: &[&str] = &["scroll", "click", "input", "submit", "history"];

/// Whether tabs mirror each other, and the hub that carries what they do.
pub struct Mirror<'a> {
    pub hub: &'a Hub,
    pub on: &'a AtomicBool,
    /// How many tabs show the site now (the dashboard is not a device).
    pub devices: usize,
}

impl Mirror<'_> {
    /// Acts on a sync, switch or dashboard command from a tab.
    pub fn heard(&self, message: ClientMessage) {
        match message {
            ClientMessage::Sync { device, action } => {
                let known = action
                    .get("kind")
                    .and_then(|kind| kind.as_str())
                    .is_some_and(|kind| ACTIONS.contains(&kind));
                if self.on.load(Ordering::Relaxed) && known && device.len() <= 64 {
                    self.hub.broadcast(Event::Sync { device, action });
                }
            }
            ClientMessage::SyncToggle { on } => {
                let was = self.on.swap(on, Ordering::Relaxed);
                if was != on {
                    tracing::info!("sync    mirroring {}", if on { "on" } else { "off" });
                }
                self.announce();
            }
            ClientMessage::Command { command, url } => match (command.as_str(), url) {
                ("reload", _) => {
                    tracing::info!("reload  from the dashboard");
                    self.hub.publish(Event::Reload {
                        reason: "reloaded from the dashboard".into(),
                        paths: Vec::new(),
                    });
                }
                // Only a path on this site: each tab checks it is same-origin again.
                ("navigate", Some(url)) if url.starts_with('/') && !url.starts_with("//") => {
                    tracing::info!("sync    every tab to {url}");
                    self.hub.broadcast(Event::Navigate { url });
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Tells every tab how many devices take part, when they are mirrored (a device came or
    /// went); while mirroring is off nobody shows the number.
    pub fn devices_changed(&self) {
        if self.on.load(Ordering::Relaxed) {
            self.announce();
        }
    }

    /// Tells every tab whether mirroring is on and how many devices take part.
    pub fn announce(&self) {
        self.hub.broadcast(Event::SyncState {
            on: self.on.load(Ordering::Relaxed),
            devices: self.devices,
        });
    }
}
