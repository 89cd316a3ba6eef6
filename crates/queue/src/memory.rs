//! The embedded queue: one process, in memory. What it holds is lost with the process, which is
//! why the embedded hub stores a batch before acknowledging it to the collector (the collector's
//! spool keeps it until then).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{Delivery, Queue, Result, Token};

struct Msg {
    id: String,
    payload: Vec<u8>,
    attempt: u64,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Msg>,
    in_flight: HashMap<u64, (Msg, Instant)>,
    next_tag: u64,
    /// id → when it may be published again.
    seen: HashMap<String, Instant>,
}

/// In-process queue.
pub struct MemoryQueue {
    state: Mutex<State>,
    notify: Notify,
    ack_wait: Duration,
    dedup_window: Duration,
}

impl MemoryQueue {
    /// A queue redelivering after `ack_wait` and deduplicating ids for `dedup_window`.
    pub fn new(ack_wait: Duration, dedup_window: Duration) -> MemoryQueue {
        MemoryQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            ack_wait,
            dedup_window,
        }
    }

    fn take(&self, max: usize) -> Vec<Delivery> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Expired deliveries go back first, in the order they were taken.
        let mut expired: Vec<u64> = s
            .in_flight
            .iter()
            .filter(|(_, (_, t))| now.duration_since(*t) >= self.ack_wait)
            .map(|(k, _)| *k)
            .collect();
        expired.sort_unstable();
        for k in expired.into_iter().rev() {
            if let Some((m, _)) = s.in_flight.remove(&k) {
                s.ready.push_front(m);
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut m) = s.ready.pop_front() else {
                break;
            };
            m.attempt += 1;
            s.next_tag += 1;
            let tag = s.next_tag;
            out.push(Delivery {
                id: m.id.clone(),
                payload: m.payload.clone(),
                attempt: m.attempt,
                token: Token::Memory(tag),
            });
            s.in_flight.insert(tag, (m, now));
        }
        out
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn publish(&self, id: &str, payload: &[u8]) -> Result<bool> {
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            s.seen.retain(|_, until| *until > now);
            if s.seen.contains_key(id) {
                return Ok(false);
            }
            s.seen.insert(id.to_owned(), now + self.dedup_window);
            s.ready.push_back(Msg {
                id: id.to_owned(),
                payload: payload.to_vec(),
                attempt: 0,
            });
        }
        self.notify.notify_waiters();
        Ok(true)
    }

    async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self.take(max.max(1));
            if !got.is_empty() {
                return Ok(got);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Wake on a publish, a nack, or in time to redeliver an expired message.
            let step = (deadline - now).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(step, self.notify.notified()).await;
        }
    }

    async fn ack(&self, d: Delivery) -> Result<()> {
        if let Token::Memory(tag) = d.token {
            self.state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .in_flight
                .remove(&tag);
        }
        Ok(())
    }

    async fn nack(&self, d: Delivery) -> Result<()> {
        if let Token::Memory(tag) = d.token {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((m, _)) = s.in_flight.remove(&tag) {
                s.ready.push_front(m);
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }
}
