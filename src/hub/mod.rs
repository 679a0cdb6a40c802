//! hub: the one place events go through. Keeps a bounded ring of recent events with
//! increasing ids and broadcasts each to every subscriber; a reconnecting client names the last
//! id it saw and gets what it missed.
//!
//! Uses: nothing.
//!
//! Must never: block a publisher on a slow subscriber (a subscriber that falls behind by more
//! than the channel holds is told so and dropped by its owner).

pub mod protocol;
pub mod routes;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::hub::protocol::{Envelope, Event, now_ms};

/// How many recent events are kept for clients that reconnect.
pub const RING_CAPACITY: usize = 256;
/// How many events a subscriber may fall behind before it is dropped.
const CHANNEL_CAPACITY: usize = 64;

/// An event as kept and sent: the envelope, and its JSON serialized once for every subscriber.
#[derive(Debug)]
pub struct Published {
    pub envelope: Envelope,
    pub json: Bytes,
    /// Not kept in the ring (build output): sent to whoever listens now, never replayed.
    pub transient: bool,
}

impl Published {
    pub fn new(envelope: Envelope) -> Arc<Published> {
        Published::serialize(envelope, false)
    }

    fn serialize(envelope: Envelope, transient: bool) -> Arc<Published> {
        let json = serde_json::to_vec(&envelope).expect("events always serialize");
        Arc::new(Published {
            envelope,
            json: Bytes::from(json),
            transient,
        })
    }

    pub fn id(&self) -> u64 {
        self.envelope.id
    }
}

struct Ring {
    last_id: u64,
    events: VecDeque<Arc<Published>>,
    counters: Counters,
}

/// How many of each kind of event went out since start, for the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub reloads: u64,
    /// `morph` events sent, and how the tabs took them: updated in place, or reloaded instead.
    pub morphs: u64,
    pub pages_morphed: u64,
    pub morph_fallbacks: u64,
    pub css_swaps: u64,
    pub image_swaps: u64,
    pub builds: u64,
    pub build_failures: u64,
    pub messages: u64,
    pub dev_server_exits: u64,
}

impl Counters {
    fn count(&mut self, event: &Event) {
        match event {
            Event::Reload { .. } => self.reloads += 1,
            Event::Morph { .. } => self.morphs += 1,
            Event::Css { .. } => self.css_swaps += 1,
            Event::Image { .. } => self.image_swaps += 1,
            Event::BuildCompleted { .. } => self.builds += 1,
            Event::BuildError { .. } => {
                self.builds += 1;
                self.build_failures += 1;
            }
            Event::Message { .. } => self.messages += 1,
            Event::UpstreamExited { .. } => self.dev_server_exits += 1,
            _ => {}
        }
    }
}

/// The event hub. Cheap to share behind an `Arc`.
pub struct Hub {
    session_id: String,
    ring: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Published>>,
}

/// What a new subscriber has to catch up on before it follows the live stream.
#[derive(Debug)]
pub enum Backlog {
    /// Events after the id the client named, oldest first (possibly none).
    Missed(Vec<Arc<Published>>),
    /// The client's id is older than the ring (or from another session): it missed too much to
    /// replay and should simply reload.
    Gap,
}

/// A subscription: the backlog, then `receiver` for everything published after it.
pub struct Subscription {
    /// The newest event id at the moment of subscribing: the backlog ends at or before it,
    /// and everything `receiver` yields comes after it.
    pub last_id: u64,
    pub backlog: Backlog,
    pub receiver: broadcast::Receiver<Arc<Published>>,
}

impl Hub {
    pub fn new(session_id: String) -> Hub {
        let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
        Hub {
            session_id,
            ring: Mutex::new(Ring {
                last_id: 0,
                events: VecDeque::with_capacity(RING_CAPACITY),
                counters: Counters::default(),
            }),
            sender,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The newest event id (0 before the first event).
    pub fn last_id(&self) -> u64 {
        self.ring().last_id
    }

    /// Counts how a tab took a `morph` (for the dashboard).
    pub fn tab_updated(&self, morphed: bool) {
        let mut ring = self.ring();
        if morphed {
            ring.counters.pages_morphed += 1;
        } else {
            ring.counters.morph_fallbacks += 1;
        }
    }

    /// How many subscribers are connected.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Records `event`, sends it to every subscriber and returns its id.
    pub fn publish(&self, event: Event) -> u64 {
        let mut ring = self.ring();
        ring.counters.count(&event);
        ring.last_id += 1;
        let envelope = Published::new(self.envelope(ring.last_id, event));
        if ring.events.len() == RING_CAPACITY {
            ring.events.pop_front();
        }
        ring.events.push_back(envelope.clone());
        // Sent under the lock so ids reach every subscriber in order and `subscribe` sees a
        // consistent cut. An error only means nobody is listening.
        let _ = self.sender.send(envelope);
        ring.last_id
    }

    /// Sends `event` to every subscriber without keeping it (build output lines).
    pub fn broadcast(&self, event: Event) {
        let ring = self.ring();
        let _ = self.sender.send(Published::serialize(
            self.envelope(ring.last_id, event),
            true,
        ));
    }

    /// Wraps an event that is not kept (`hello`, `ping`) with the newest id.
    pub fn transient(&self, event: Event) -> Envelope {
        self.envelope(self.last_id(), event)
    }

    /// Subscribes a client that has seen events up to `seen` (`None` for a new page).
    pub fn subscribe(&self, seen: Option<u64>) -> Subscription {
        let ring = self.ring();
        let receiver = self.sender.subscribe();
        let backlog = match seen {
            None => Backlog::Missed(Vec::new()),
            Some(seen) if seen > ring.last_id => Backlog::Gap,
            Some(seen) => {
                let oldest_kept = ring.events.front().map_or(ring.last_id + 1, |e| e.id());
                if seen + 1 < oldest_kept {
                    Backlog::Gap
                } else {
                    Backlog::Missed(
                        ring.events
                            .iter()
                            .filter(|e| e.id() > seen)
                            .cloned()
                            .collect(),
                    )
                }
            }
        };
        Subscription {
            last_id: ring.last_id,
            backlog,
            receiver,
        }
    }

    /// The newest `n` events kept, oldest first, and the counters.
    pub fn recent(&self, n: usize) -> (Vec<Arc<Published>>, Counters) {
        let ring = self.ring();
        let skip = ring.events.len().saturating_sub(n);
        (
            ring.events.iter().skip(skip).cloned().collect(),
            ring.counters,
        )
    }

    /// Wraps an event with a given id without keeping it.
    pub fn envelope(&self, id: u64, event: Event) -> Envelope {
        Envelope {
            id,
            event,
            timestamp: now_ms(),
            session_id: self.session_id.clone(),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reload() -> Event {
        Event::Reload {
            reason: "test".into(),
            paths: vec![],
        }
    }

    fn ids(backlog: &Backlog) -> Vec<u64> {
        match backlog {
            Backlog::Missed(events) => events.iter().map(|e| e.id()).collect(),
            Backlog::Gap => panic!("expected a replayable backlog"),
        }
    }

    #[test]
    fn ids_increase_and_subscribers_receive_in_order() {
        let hub = Hub::new("s".into());
        let mut sub = hub.subscribe(None);
        assert_eq!(hub.publish(reload()), 1);
        assert_eq!(hub.publish(reload()), 2);
        assert_eq!(sub.receiver.try_recv().unwrap().id(), 1);
        assert_eq!(sub.receiver.try_recv().unwrap().id(), 2);
    }

    #[test]
    fn reconnecting_client_gets_exactly_what_it_missed() {
        let hub = Hub::new("s".into());
        for _ in 0..5 {
            hub.publish(reload());
        }
        assert_eq!(ids(&hub.subscribe(Some(2)).backlog), vec![3, 4, 5]);
        assert_eq!(ids(&hub.subscribe(Some(5)).backlog), Vec::<u64>::new());
        assert_eq!(ids(&hub.subscribe(Some(0)).backlog), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn client_too_far_behind_or_from_the_future_gets_a_gap() {
        let hub = Hub::new("s".into());
        for _ in 0..(RING_CAPACITY + 10) {
            hub.publish(reload());
        }
        assert!(matches!(hub.subscribe(Some(3)).backlog, Backlog::Gap));
        let last = hub.last_id();
        assert!(matches!(
            hub.subscribe(Some(last + 1)).backlog,
            Backlog::Gap
        ));
        assert_eq!(ids(&hub.subscribe(Some(last - 1)).backlog), vec![last]);
    }

    #[test]
    fn recent_events_and_counters() {
        let hub = Hub::new("s".into());
        hub.publish(reload());
        hub.publish(Event::Css {
            paths: vec!["/a.css".into()],
        });
        hub.broadcast(Event::BuildProgress { line: "x".into() });
        hub.publish(reload());
        let (events, counters) = hub.recent(2);
        assert_eq!(events.iter().map(|e| e.id()).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(counters.reloads, 2);
        assert_eq!(counters.css_swaps, 1);
        assert_eq!(counters.builds, 0, "progress lines are not builds");
    }

    #[test]
    fn slow_subscriber_lags_without_blocking_the_publisher() {
        let hub = Hub::new("s".into());
        let mut slow = hub.subscribe(None);
        for _ in 0..(CHANNEL_CAPACITY * 3) {
            hub.publish(reload());
        }
        assert!(matches!(
            slow.receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
