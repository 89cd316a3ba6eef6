//! Folding repeats into one record: volume reduction that never delays an alert.
//!
//! Events with the same key — source, destination, destination port, protocol, action and
//! direction — within a window become:
//!
//! 1. the **first** occurrence, emitted at once into the batch being filled (so the hub can
//!    alert on it within seconds); repeats that arrive before that batch is sealed are folded
//!    straight into it (its `count` grows, no extra record);
//! 2. one **summary** of the repeats that arrive after it was sealed, emitted when the window
//!    closes, with `count`, first and last time, and summed bytes and packets.
//!
//! **Invariant: counts are conserved.** The sum of `count` over everything emitted equals the
//! sum over everything pushed, once [`Aggregator::flush_all`] has run (property-tested).
//!
//! Pure: time is passed in. The table is bounded; when it is full a new key's event passes
//! through unaggregated (counted in [`Aggregator::passed_through`]), never dropped.

use std::collections::HashMap;
use std::net::IpAddr;

use watchhouse_event::{Action, Direction, Event, IpProto};

/// What makes two events "the same" for aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    src: IpAddr,
    dst: IpAddr,
    dst_port: Option<u16>,
    protocol: IpProto,
    action: Action,
    direction: Direction,
}

impl Key {
    /// The key of an event.
    pub fn of(e: &Event) -> Key {
        Key {
            src: e.src_ip,
            dst: e.dst_ip,
            dst_port: e.dst_port,
            protocol: e.protocol,
            action: e.action,
            direction: e.direction,
        }
    }
}

#[derive(Debug)]
struct Slot {
    /// When the window for this key opened (time of the first occurrence).
    opened_ms: i64,
    /// Where the first occurrence sits in the batch being filled, if that batch is unsealed.
    first_at: Option<(u64, usize)>,
    /// The repeats so far, folded into one event (the first repeat's line is kept as evidence).
    repeats: Option<Event>,
    /// Whether any repeat came from a replayable source (a file): those are flushed at every
    /// seal so file checkpoints never run ahead of what was spooled.
    from_file: bool,
}

/// The aggregation table.
#[derive(Debug)]
pub struct Aggregator {
    window_ms: i64,
    max_keys: usize,
    slots: HashMap<Key, Slot>,
    passed_through: u64,
    /// Counts seals, so a slot knows whether its first occurrence is still in the open batch.
    generation: u64,
}

impl Aggregator {
    /// A table folding repeats within `window_ms`, holding at most `max_keys` keys.
    pub fn new(window_ms: i64, max_keys: usize) -> Self {
        Aggregator {
            window_ms: window_ms.max(0),
            max_keys: max_keys.max(1),
            slots: HashMap::new(),
            passed_through: 0,
            generation: 0,
        }
    }

    /// The batch being filled was sealed: later repeats are summarised instead of folded into it.
    pub fn sealed(&mut self) {
        self.generation += 1;
    }

    /// Events that skipped aggregation because the table was full.
    pub fn passed_through(&self) -> u64 {
        self.passed_through
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Takes one event; whatever must be sent now is appended to `out`: a first occurrence (or
    /// the event itself when the table is full), plus the previous window's summary when this
    /// event's time opens a new window for its key. `from_file` marks replayable input.
    pub fn push(&mut self, e: Event, from_file: bool, out: &mut Vec<Event>) {
        if self.window_ms == 0 {
            out.push(e);
            return;
        }
        let key = Key::of(&e);
        let generation = self.generation;
        if let Some(slot) = self.slots.get_mut(&key) {
            if e.time_ms >= slot.opened_ms && e.time_ms - slot.opened_ms < self.window_ms {
                if let Some((g, i)) = slot.first_at {
                    if g == generation {
                        if let Some(first) = out.get_mut(i) {
                            if Key::of(first) == key {
                                fold(first, &e);
                                return;
                            }
                        }
                    }
                }
                slot.from_file |= from_file;
                match &mut slot.repeats {
                    Some(r) => fold(r, &e),
                    None => {
                        let mut first_repeat = e;
                        first_repeat.count = first_repeat.count.max(1);
                        first_repeat.last_ms = first_repeat.last_ms.max(first_repeat.time_ms);
                        slot.repeats = Some(first_repeat);
                    }
                }
                return;
            }
            // Outside this key's window: close it and open a new one with this event.
            if let Some(summary) = slot.repeats.take() {
                out.push(summary);
            }
            *slot = Slot {
                opened_ms: e.time_ms,
                first_at: Some((generation, out.len())),
                repeats: None,
                from_file: false,
            };
            out.push(e);
            return;
        }
        if self.slots.len() >= self.max_keys {
            self.passed_through += 1;
            out.push(e);
            return;
        }
        self.slots.insert(
            key,
            Slot {
                opened_ms: e.time_ms,
                first_at: Some((generation, out.len())),
                repeats: None,
                from_file: false,
            },
        );
        out.push(e);
    }

    /// Emits the summaries of windows that have closed by `now_ms`, forgetting their keys.
    pub fn flush_due(&mut self, now_ms: i64, out: &mut Vec<Event>) {
        let window = self.window_ms;
        self.slots.retain(|_, slot| {
            if now_ms - slot.opened_ms >= window {
                if let Some(r) = slot.repeats.take() {
                    out.push(r);
                }
                false
            } else {
                true
            }
        });
    }

    /// Emits the summaries holding repeats read from files (the window stays open), so a file's
    /// checkpoint never moves past a line whose count is only in memory.
    pub fn flush_files(&mut self, out: &mut Vec<Event>) {
        for slot in self.slots.values_mut() {
            if slot.from_file {
                if let Some(r) = slot.repeats.take() {
                    out.push(r);
                }
                slot.from_file = false;
            }
        }
    }

    /// Emits every held summary and forgets every key (shutdown).
    pub fn flush_all(&mut self, out: &mut Vec<Event>) {
        for (_, slot) in self.slots.drain() {
            if let Some(r) = slot.repeats {
                out.push(r);
            }
        }
    }
}

fn fold(into: &mut Event, e: &Event) {
    into.count = into.count.saturating_add(e.count.max(1));
    into.time_ms = into.time_ms.min(e.time_ms);
    into.last_ms = into.last_ms.max(e.last_ms.max(e.time_ms));
    into.bytes = watchhouse_parse::fields::sum_opt(into.bytes, e.bytes);
    into.packets = watchhouse_parse::fields::sum_opt(into.packets, e.packets);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use watchhouse_event::Format;

    fn ev(src: u8, port: u16, t: i64, bytes: u64) -> Event {
        Event {
            time_ms: t,
            last_ms: t,
            action: Action::Deny,
            protocol: IpProto::TCP,
            src_ip: IpAddr::from([203, 0, 113, src]),
            src_port: Some(40000u16.wrapping_add(t as u16)),
            dst_ip: "198.51.100.10".parse().unwrap(),
            dst_port: Some(port),
            direction: Direction::Inbound,
            in_iface: None,
            out_iface: None,
            rule: None,
            device: None,
            format: Format::Netfilter,
            bytes: Some(bytes),
            packets: Some(1),
            count: 1,
            raw: format!("line {src} {port} {t}"),
            nat: None,
            product: None,
            host: None,
            url: None,
        }
    }

    #[test]
    fn first_goes_at_once_repeats_are_summarised() {
        let mut a = Aggregator::new(60_000, 100);
        let mut out = Vec::new();
        a.push(ev(1, 22, 0, 40), false, &mut out);
        a.push(ev(1, 22, 500, 40), false, &mut out);
        assert_eq!(out.len(), 1, "first occurrence is sent at once");
        assert_eq!(out[0].count, 2, "a repeat before the seal folds into it");
        a.sealed();
        for t in 1..=9 {
            a.push(ev(1, 22, t * 1000, 40), false, &mut out);
        }
        assert_eq!(out.len(), 1, "later repeats are held");
        a.flush_due(30_000, &mut out);
        assert_eq!(out.len(), 1, "window still open");
        a.flush_due(60_000, &mut out);
        assert_eq!(out.len(), 2);
        let s = &out[1];
        assert_eq!(
            (s.count, s.time_ms, s.last_ms, s.bytes),
            (9, 1000, 9000, Some(360))
        );
        assert_eq!(
            s.raw, "line 1 22 1000",
            "the first repeat's line is kept as evidence"
        );
        assert!(a.is_empty());
    }

    #[test]
    fn different_ports_are_different_flows() {
        let mut a = Aggregator::new(60_000, 100);
        let mut out = Vec::new();
        for p in 1..=50 {
            a.push(ev(1, p, 0, 40), false, &mut out);
        }
        assert_eq!(out.len(), 50, "a port scan is not folded away");
    }

    #[test]
    fn full_table_passes_events_through() {
        let mut a = Aggregator::new(60_000, 2);
        let mut out = Vec::new();
        for s in 1..=5 {
            a.push(ev(s, 22, 0, 1), false, &mut out);
            a.sealed();
            a.push(ev(s, 22, 1, 1), false, &mut out);
        }
        a.flush_all(&mut out);
        assert_eq!(out.iter().map(|e| e.count as u64).sum::<u64>(), 10);
        assert_eq!(a.passed_through(), 6);
    }

    #[test]
    fn file_repeats_flush_at_seal_without_reopening() {
        let mut a = Aggregator::new(60_000, 100);
        let mut out = Vec::new();
        a.push(ev(1, 22, 0, 1), true, &mut out);
        a.sealed();
        a.push(ev(1, 22, 1, 1), true, &mut out);
        a.flush_files(&mut out);
        assert_eq!(out.len(), 2);
        a.push(ev(1, 22, 2, 1), false, &mut out);
        assert_eq!(
            out.len(),
            2,
            "still the same window: folded, not a new first"
        );
    }

    #[test]
    fn zero_window_disables_aggregation() {
        let mut a = Aggregator::new(0, 100);
        let mut out = Vec::new();
        a.push(ev(1, 22, 0, 1), false, &mut out);
        a.push(ev(1, 22, 0, 1), false, &mut out);
        assert_eq!(out.len(), 2);
    }

    proptest! {
        #[test]
        fn counts_and_bytes_are_conserved(
            evs in proptest::collection::vec((0u8..4, 0u16..4, 0i64..300_000, 0u64..100, any::<bool>()), 0..300),
            ticks in proptest::collection::vec(0i64..400_000, 0..10),
            window in 0i64..120_000,
            cap in 1usize..8,
        ) {
            let mut a = Aggregator::new(window, cap);
            let mut out = Vec::new();
            let mut evs = evs;
            evs.sort_by_key(|e| e.2);
            let mut ticks = ticks;
            ticks.sort_unstable();
            let mut ti = 0;
            let mut sent: Vec<Event> = Vec::new();
            for (src, port, t, bytes, file) in &evs {
                while ti < ticks.len() && ticks[ti] <= *t {
                    a.flush_due(ticks[ti], &mut out);
                    ti += 1;
                }
                a.push(ev(*src, *port, *t, *bytes), *file, &mut out);
                if *bytes % 7 == 0 {
                    // A seal: files' repeats go with it, the batch leaves.
                    a.flush_files(&mut out);
                    sent.append(&mut out);
                    a.sealed();
                }
            }
            a.flush_all(&mut out);
            sent.append(&mut out);
            let out = sent;
            prop_assert_eq!(out.iter().map(|e| e.count as u64).sum::<u64>(), evs.len() as u64);
            prop_assert_eq!(
                out.iter().map(|e| e.bytes.unwrap_or(0)).sum::<u64>(),
                evs.iter().map(|e| e.3).sum::<u64>()
            );
            for e in &out {
                prop_assert!(e.time_ms <= e.last_ms);
            }
        }
    }
}
