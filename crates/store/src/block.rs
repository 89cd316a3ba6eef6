//! Raw events kept as compressed blocks: both backends' layout for raw events.
//!
//! A batch's events of one day are one row (`event_blocks`), not one row each: the events as
//! JSON lines `[id,{event}]` (the event in its wire JSON, `watchhouse_proto::wire`), compressed
//! with zstd. Raw events are written once, read rarely (a member's latest events, an alert's
//! evidence) and dropped a day at a time, so a row per event paid a heap tuple and a B-tree
//! entry per event for lookups nobody makes; rollups answer the reports.
//!
//! Pure: no IO. The store decides what a block holds; this module only encodes and decodes.

use std::io::{Read, Write};

use watchhouse_event::Event;

use crate::{Id, Result, StoreError, StoredEvent};

/// zstd level: the fastest. Log lines repeat so much that level 1 already keeps about a tenth.
const LEVEL: i32 = 1;

/// A block never decodes to more than this; a larger one is refused as corrupt rather than read
/// into memory. A batch holds at most 32,768 events of at most 64 KiB of text each, so a real
/// block stays far below it in practice (its events are about 0.6 KiB each).
const MAX_DECODED: u64 = 1 << 30;

/// One block ready to store: the ids, times and count the row's columns carry, and the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Smallest event id in the block.
    pub first_id: Id,
    /// Largest event id in the block.
    pub last_id: Id,
    /// Earliest event time.
    pub min_time_ms: i64,
    /// Latest event time (an event's `time_ms`, which orders events).
    pub max_time_ms: i64,
    /// Number of events.
    pub events: i32,
    /// The compressed JSON lines.
    pub data: Vec<u8>,
}

/// Encodes `(id, event)` pairs, in the order given, as one block. `None` for no events.
pub fn encode<'a>(items: impl IntoIterator<Item = (Id, &'a Event)>) -> Result<Option<Block>> {
    let mut text = Vec::with_capacity(64 << 10);
    let (mut first_id, mut last_id) = (Id::MAX, Id::MIN);
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    let mut n = 0i32;
    for (id, e) in items {
        first_id = first_id.min(id);
        last_id = last_id.max(id);
        min_t = min_t.min(e.time_ms);
        max_t = max_t.max(e.time_ms);
        n += 1;
        write!(text, "[{id},").map_err(crate::be)?;
        watchhouse_proto::wire::write_event(&mut text, e);
        text.extend_from_slice(b"]\n");
    }
    if n == 0 {
        return Ok(None);
    }
    let data = zstd::bulk::compress(&text, LEVEL).map_err(crate::be)?;
    Ok(Some(Block {
        first_id,
        last_id,
        min_time_ms: min_t,
        max_time_ms: max_t,
        events: n,
        data,
    }))
}

/// Decodes a block stored for `member_id` by `collector_id`. A block that does not decode is an
/// error naming what is wrong with it, never a partial answer.
pub fn decode(member_id: Id, collector_id: Id, data: &[u8]) -> Result<Vec<StoredEvent>> {
    decode_where(member_id, collector_id, data, |_| true)
}

/// The `limit` newest events of a block (by time, then id, as a member's latest events are
/// ordered), newest first. Only the events returned are decoded in full: the rest are ranked by
/// the id and time at the head of their line.
fn decode_newest(
    member_id: Id,
    collector_id: Id,
    data: &[u8],
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let text = decompress(data)?;
    let mut heads = heads(&text)?;
    heads.sort_unstable_by_key(|h| std::cmp::Reverse((h.1, h.0)));
    heads.truncate(limit);
    heads
        .iter()
        .map(|h| line_event(member_id, collector_id, h.2))
        .collect()
}

/// A member's `limit` latest events (by time, then id, newest first), gathered from blocks
/// read newest first (by their latest event): both backends' "latest events".
pub struct Newest {
    limit: usize,
    events: Vec<StoredEvent>,
}

impl Newest {
    /// Gathers up to `limit` events.
    pub fn new(limit: usize) -> Newest {
        Newest {
            limit,
            events: Vec::new(),
        }
    }

    /// Whether more blocks can change the answer: false once it is full and a block's latest
    /// event (`newest_ms`, which bounds every later block's) is older than the last kept.
    pub fn wants(&self, newest_ms: i64) -> bool {
        self.limit > 0
            && (self.events.len() < self.limit
                || newest_ms >= self.events[self.limit - 1].event.time_ms)
    }

    /// Adds the newest events of one block stored for `member_id` by `collector_id`.
    pub fn add(&mut self, member_id: Id, collector_id: Id, data: &[u8]) -> Result<()> {
        self.events
            .extend(decode_newest(member_id, collector_id, data, self.limit)?);
        self.events
            .sort_unstable_by_key(|e| std::cmp::Reverse((e.event.time_ms, e.id)));
        self.events.truncate(self.limit);
        Ok(())
    }

    /// The events, newest first.
    pub fn into_events(self) -> Vec<StoredEvent> {
        self.events
    }
}

/// The events of a block whose ids `keep` accepts, in the block's order; only those are
/// decoded in full.
pub fn decode_where(
    member_id: Id,
    collector_id: Id,
    data: &[u8],
    mut keep: impl FnMut(Id) -> bool,
) -> Result<Vec<StoredEvent>> {
    let text = decompress(data)?;
    heads(&text)?
        .into_iter()
        .filter(|h| keep(h.0))
        .map(|h| line_event(member_id, collector_id, h.2))
        .collect()
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("an event block is corrupt: {what}"))
}

fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    zstd::stream::read::Decoder::new(data)
        .map_err(corrupt)?
        .take(MAX_DECODED + 1)
        .read_to_end(&mut text)
        .map_err(corrupt)?;
    if text.len() as u64 > MAX_DECODED {
        return Err(corrupt(format!("it decodes to over {MAX_DECODED} bytes")));
    }
    Ok(text)
}

/// Each line's id, time and text. [`encode`] starts every line `[ID,{"time_ms":TIME,`, so
/// both are read from there; a line that does not start so is parsed in full instead.
fn heads(text: &[u8]) -> Result<Vec<(Id, i64, &[u8])>> {
    text.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| match head(l) {
            Some((id, t)) => Ok((id, t, l)),
            None => {
                let (id, e): (Id, Event) = serde_json::from_slice(l).map_err(corrupt)?;
                Ok((id, e.time_ms, l))
            }
        })
        .collect()
}

/// `[ID,{"time_ms":TIME,` at the start of `l`, read exactly (no sign on the id, an optional
/// minus on the time, no leading `+`, no overflow), or `None`.
fn head(l: &[u8]) -> Option<(Id, i64)> {
    let rest = l.strip_prefix(b"[")?;
    let (id, rest) = int(rest)?;
    let rest = rest.strip_prefix(b",{\"time_ms\":")?;
    let (neg, rest) = match rest.strip_prefix(b"-") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (t, rest) = int(rest)?;
    rest.starts_with(b",")
        .then_some((id, if neg { t.checked_neg()? } else { t }))
}

/// A run of ASCII digits as an `i64` (at least one digit, no overflow) and what follows it.
fn int(b: &[u8]) -> Option<(i64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    Some((v, &b[n..]))
}

fn line_event(member_id: Id, collector_id: Id, line: &[u8]) -> Result<StoredEvent> {
    let (id, mut event): (Id, Event) = serde_json::from_slice(line).map_err(corrupt)?;
    // Stored events end no earlier than they start (the row layout kept the same rule).
    event.last_ms = event.last_ms.max(event.time_ms);
    Ok(StoredEvent {
        id,
        member_id,
        collector_id,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use watchhouse_event::{Action, Direction, Format, IpProto, Nat};

    fn event(i: u32) -> Event {
        Event {
            time_ms: 1_700_000_000_000 + i64::from(i) * 7,
            last_ms: 1_700_000_000_000 + i64::from(i) * 7 + 3,
            action: if i % 2 == 0 {
                Action::Drop
            } else {
                Action::Allow
            },
            protocol: IpProto::TCP,
            src_ip: IpAddr::from([203, 0, 113, (i % 250) as u8]),
            src_port: Some(40_000 + (i % 1000) as u16),
            dst_ip: "2001:db8::1".parse().unwrap(),
            dst_port: (i % 3 != 0).then_some(22),
            direction: Direction::Inbound,
            in_iface: Some("eth0".into()),
            out_iface: None,
            rule: Some("rule \"quoted\" \\ \u{1}".into()),
            device: Some("fw-é".into()),
            format: Format::Netfilter,
            bytes: Some(u64::MAX),
            packets: Some(1),
            count: i + 1,
            raw: format!("line {i}\twith\nnewline and \"quotes\""),
            nat: (i % 5 == 0).then(|| Nat {
                src_ip: Some(IpAddr::from([10, 0, 0, 1])),
                src_port: Some(1),
                dst_ip: None,
                dst_port: None,
            }),
            product: None,
            host: (i % 7 == 0).then(|| "example.org".into()),
            url: None,
        }
    }

    #[test]
    fn a_block_decodes_to_exactly_what_was_encoded() {
        let events: Vec<Event> = (0..500).map(event).collect();
        let ids = (0..500).map(|i| 32_768 * 3 + i * 2);
        let b = encode(ids.clone().zip(&events)).unwrap().unwrap();
        assert_eq!(
            (b.first_id, b.last_id, b.events),
            (98_304, 98_304 + 998, 500)
        );
        assert_eq!(b.min_time_ms, events[0].time_ms);
        assert_eq!(b.max_time_ms, events[499].time_ms);
        let back = decode(4, 9, &b.data).unwrap();
        assert_eq!(back.len(), 500);
        for ((s, id), e) in back.iter().zip(ids).zip(&events) {
            assert_eq!((s.id, s.member_id, s.collector_id), (id, 4, 9));
            assert_eq!(
                serde_json::to_value(&s.event).unwrap(),
                serde_json::to_value(e).unwrap()
            );
        }
        // Repetitive log text compresses: the block is a small fraction of the JSON.
        assert!(b.data.len() * 4 < 500 * 300, "{} bytes", b.data.len());
    }

    #[test]
    fn no_events_is_no_block_and_an_end_before_the_start_is_raised_to_it() {
        assert_eq!(encode(std::iter::empty()).unwrap(), None);
        let mut e = event(1);
        e.last_ms = e.time_ms - 10;
        let b = encode([(7, &e)]).unwrap().unwrap();
        assert_eq!(decode(1, 1, &b.data).unwrap()[0].event.last_ms, e.time_ms);
    }

    proptest::proptest! {
        /// The newest events read by their line heads are the ones a full decode, sorted by
        /// time then id, puts first; and a filter by id keeps exactly the ids it accepts.
        #[test]
        fn lines_ranked_by_their_heads_agree_with_a_full_decode(
            times in proptest::collection::vec(proptest::prop_oneof![
                -3i64..3, 0i64..50, proptest::num::i64::ANY, proptest::strategy::Just(i64::MIN),
            ], 1..40),
            ids in proptest::collection::vec(proptest::prop_oneof![
                0i64..60, proptest::num::i64::ANY,
            ], 40),
            limit in 0usize..45,
        ) {
            let events: Vec<Event> = times.iter().enumerate().map(|(i, t)| {
                let mut e = event(i as u32);
                e.time_ms = *t;
                e
            }).collect();
            let ids: Vec<Id> = ids[..events.len()].to_vec();
            let b = encode(ids.iter().copied().zip(&events)).unwrap().unwrap();
            let mut all = decode(2, 3, &b.data).unwrap();
            proptest::prop_assert_eq!(all.len(), events.len());
            all.sort_by_key(|b| std::cmp::Reverse((b.event.time_ms, b.id)));
            let newest = decode_newest(2, 3, &b.data, limit).unwrap();
            let key = |v: &[StoredEvent]| v.iter().map(|s| (s.id, s.event.time_ms)).collect::<Vec<_>>();
            proptest::prop_assert_eq!(key(&newest), key(&all[..limit.min(all.len())]));
            let even = decode_where(2, 3, &b.data, |id| id % 2 == 0).unwrap();
            let want: Vec<Id> = ids.iter().copied().filter(|id| id % 2 == 0).collect();
            proptest::prop_assert_eq!(even.iter().map(|s| s.id).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn line_heads_are_read_exactly_or_not_at_all() {
        assert_eq!(head(b"[12,{\"time_ms\":-5,"), Some((12, -5)));
        assert_eq!(head(b"[0,{\"time_ms\":0,\"x\""), Some((0, 0)));
        for bad in [
            &b"[12,{\"time_ms\":5}"[..],
            b"[-1,{\"time_ms\":5,",
            b"[1,{\"time_ms\":+5,",
            b"[1,{\"time_ms\":99999999999999999999,",
            b"[1,{\"time_ms\":-9223372036854775808,",
            b"[1,{\"last_ms\":5,",
            b"[,{\"time_ms\":5,",
        ] {
            assert_eq!(head(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_partial_answer() {
        let events: Vec<Event> = (0..50).map(event).collect();
        let b = encode((0..50).zip(&events)).unwrap().unwrap();
        assert!(decode(1, 1, &b.data[..b.data.len() / 2]).is_err());
        assert!(decode(1, 1, b"not zstd at all").is_err());
        let junk = zstd::bulk::compress(b"[1,{\"time_ms\":1}]\n", 1).unwrap();
        let err = decode(1, 1, &junk).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
