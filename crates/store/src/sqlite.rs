//! The embedded backend: one SQLite file in WAL mode.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a few reader
//! connections, each behind a mutex and used from Tokio's blocking pool, so slow queries never
//! block the async runtime. Migrations are embedded and applied in order at open.
//!
//! The WAL is checkpointed by a thread of its own ([`Checkpointer`]), not by the writer after
//! its commits: copying pages back into the database file then runs beside ingest instead of
//! inside it. The writer keeps SQLite's automatic checkpoint as a backstop, so the WAL stays
//! bounded even if that thread falls behind.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use watchhouse_detect::{AlertKind, Observation, ObservedLabel, Severity};
use watchhouse_event::{Action, Direction, Event, Format, IpProto};
use watchhouse_intel::{IndicatorValue, Tlp};
use watchhouse_proto::Batch;

use crate::*;

/// Migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_nat_product.sql"),
    include_str!("../migrations/sqlite/0003_intel.sql"),
    include_str!("../migrations/sqlite/0004_feedback.sql"),
    include_str!("../migrations/sqlite/0005_notify.sql"),
    include_str!("../migrations/sqlite/0006_host_url.sql"),
    include_str!("../migrations/sqlite/0007_leases.sql"),
    include_str!("../migrations/sqlite/0008_event_blocks.sql"),
];

/// The schema version that moved raw events into blocks; the old rows are converted right
/// after its script (see [`convert_event_rows`]).
const BLOCKS_VERSION: usize = 8;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    /// Write transactions so far, read by the checkpointer to skip idle rounds.
    writes: Arc<AtomicU64>,
    /// The next event id this handle gives out: batches take their ids from here before the
    /// write lock, so their blocks are encoded outside it ([`store_blocks`] checks them).
    next_id: Arc<AtomicI64>,
    /// Dropped with the store, which stops the checkpointer thread.
    _checkpointer: Checkpointer,
}

/// How often the checkpointer looks for new WAL frames. Short enough that the writer's
/// backstop checkpoint (at [`BACKSTOP_BYTES`] of WAL) finds almost everything already copied.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer's own automatic checkpoint, as WAL bytes: a bound on the WAL when the
/// checkpointer thread cannot keep up. When it runs, it copies only the frames the
/// checkpointer has not, and lets the next write start the WAL again from its beginning.
const BACKSTOP_BYTES: u32 = 64 << 20;

/// Page size of a new database. Ingest appends rows and updates rollup rows spread over the
/// tables, and each commit writes every page it touched to the WAL (a frame and a checksum per
/// page): with 16 KiB pages instead of SQLite's 4 KiB an embedded hub stored 2,000,000 events
/// over HTTP at 290–316k events/s instead of 265–270k (docs/scale-out.md).
const PAGE_SIZE: u32 = 16384;

/// A thread with its own connection that runs passive checkpoints (never waiting for the
/// writer or readers) while writes happen. Stops when dropped.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, writes: Arc<AtomicU64>) -> Result<Checkpointer> {
        let c = Connection::open(path).map_err(be)?;
        configure(&c).map_err(be)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut done = writes.load(Ordering::Relaxed);
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let now = writes.load(Ordering::Relaxed);
                    if now == done {
                        continue;
                    }
                    done = now;
                    // Returns (busy, WAL frames, frames copied); a passive checkpoint that
                    // could not copy everything simply continues next round.
                    let r = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "background WAL checkpoint failed; the writer's own checkpoint still bounds the WAL");
                    }
                }
            })
            .map_err(be)?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn map_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            let m = msg.clone().unwrap_or_default();
            if m.contains("UNIQUE") {
                return StoreError::Conflict(m);
            }
            if m.contains("FOREIGN KEY") {
                return StoreError::NotFound("a referenced row does not exist".into());
            }
            return StoreError::Invalid(m);
        }
    }
    be(e)
}

fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    // Only a new database takes the page size (it is fixed by the first write, which switching
    // to WAL is); an existing one keeps its own.
    c.pragma_update(None, "page_size", PAGE_SIZE)?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )?;
    let page: u32 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
    c.pragma_update(None, "wal_autocheckpoint", BACKSTOP_BYTES / page.max(512))
}

fn migrate(c: &mut Connection) -> Result<()> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
    )
    .map_err(be)?;
    let current: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(be)?;
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError::Invalid(format!(
            "the database schema is version {current}, newer than this build knows ({}): upgrade Watchhouse",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = c.transaction().map_err(be)?;
        tx.execute_batch(sql).map_err(be)?;
        if i + 1 == BLOCKS_VERSION {
            convert_event_rows(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)",
            params![i as i64 + 1, now_ms()],
        )
        .map_err(be)?;
        tx.commit().map_err(be)?;
    }
    Ok(())
}

/// SQL condition restricting `members m` to a scope, with its parameters.
fn scope_sql(scope: &Scope) -> (String, Vec<Value>) {
    match scope {
        Scope::All => ("1".into(), vec![]),
        Scope::Force(f) => ("m.force_id = ?".into(), vec![Value::Integer(*f)]),
        Scope::Region(r) => (
            "m.force_id IN (SELECT id FROM forces WHERE region = ?)".into(),
            vec![Value::Text(r.clone())],
        ),
        Scope::Members(ids) if ids.is_empty() => ("0".into(), vec![]),
        Scope::Members(ids) => (
            format!("m.id IN ({})", vec!["?"; ids.len()].join(",")),
            ids.iter().map(|i| Value::Integer(*i)).collect(),
        ),
    }
}

const EVENT_COLS: &str =
    "e.id, e.member_id, e.collector_id, e.time_ms, e.last_ms, e.action, e.protocol, \
     e.src_ip, e.src_port, e.dst_ip, e.dst_port, e.direction, e.in_iface, e.out_iface, e.rule, \
     e.device, e.format, e.bytes, e.packets, e.count, e.raw, e.nat, e.product, e.host, e.url";

fn row_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let text_err = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("bad {what} in database").into(),
        )
    };
    let action: String = r.get(5)?;
    let src: String = r.get(7)?;
    let dst: String = r.get(9)?;
    let dir: String = r.get(11)?;
    let fmt: String = r.get(16)?;
    Ok(StoredEvent {
        id: r.get(0)?,
        member_id: r.get(1)?,
        collector_id: r.get(2)?,
        event: Event {
            time_ms: r.get(3)?,
            last_ms: r.get(4)?,
            action: Action::from_name(&action).ok_or_else(|| text_err(5, "action"))?,
            protocol: IpProto(r.get::<_, i64>(6)? as u8),
            src_ip: src.parse().map_err(|_| text_err(7, "address"))?,
            src_port: r.get::<_, Option<i64>>(8)?.map(|p| p as u16),
            dst_ip: dst.parse().map_err(|_| text_err(9, "address"))?,
            dst_port: r.get::<_, Option<i64>>(10)?.map(|p| p as u16),
            direction: Direction::from_name(&dir).ok_or_else(|| text_err(11, "direction"))?,
            in_iface: r.get(12)?,
            out_iface: r.get(13)?,
            rule: r.get(14)?,
            device: r.get(15)?,
            format: Format::from_name(&fmt).ok_or_else(|| text_err(16, "format"))?,
            bytes: r.get::<_, Option<i64>>(17)?.map(|b| b as u64),
            packets: r.get::<_, Option<i64>>(18)?.map(|b| b as u64),
            count: r.get::<_, i64>(19)? as u32,
            raw: r.get(20)?,
            nat: r
                .get::<_, Option<String>>(21)?
                .and_then(|n| serde_json::from_str(&n).ok()),
            product: r.get(22)?,
            host: r.get(23)?,
            url: r.get(24)?,
        },
    })
}

const ALERT_COLS: &str =
    "a.id, a.member_id, m.name, a.kind, a.severity, a.subject_ip, a.lists, a.ports, \
     a.event_count, a.first_seen_ms, a.last_seen_ms, a.status, a.labels, a.feedback";

fn row_alert(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let conv = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("bad {what} in database").into(),
        )
    };
    let kind: String = r.get(3)?;
    let sev: String = r.get(4)?;
    let ip: String = r.get(5)?;
    let lists: String = r.get(6)?;
    let ports: String = r.get(7)?;
    let status: String = r.get(11)?;
    let labels: String = r.get(12)?;
    let feedback: Option<String> = r.get(13)?;
    Ok(Alert {
        id: r.get(0)?,
        member_id: r.get(1)?,
        member_name: r.get(2)?,
        kind: AlertKind::from_name(&kind).ok_or_else(|| conv(3, "kind"))?,
        severity: Severity::from_name(&sev).ok_or_else(|| conv(4, "severity"))?,
        subject_ip: ip.parse::<IpAddr>().map_err(|_| conv(5, "address"))?,
        lists: serde_json::from_str(&lists).map_err(|_| conv(6, "lists"))?,
        labels: serde_json::from_str(&labels).map_err(|_| conv(12, "labels"))?,
        ports: serde_json::from_str(&ports).map_err(|_| conv(7, "ports"))?,
        event_count: r.get::<_, i64>(8)? as u64,
        first_seen_ms: r.get(9)?,
        last_seen_ms: r.get(10)?,
        status: AlertStatus::from_name(&status).ok_or_else(|| conv(11, "status"))?,
        feedback: feedback.as_deref().and_then(Feedback::from_name),
    })
}

fn load_user(c: &Connection, id: Id) -> rusqlite::Result<Option<(User, String)>> {
    let row = c
        .query_row(
            "SELECT id, email, name, role, force_id, region, password_hash, max_tlp FROM users WHERE id = ?",
            [id],
            |r| {
                Ok((
                    r.get::<_, Id>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<Id>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((id, email, name, role, force_id, region, hash, max_tlp)) = row else {
        return Ok(None);
    };
    let mut st = c.prepare_cached(
        "SELECT member_id FROM user_members WHERE user_id = ? ORDER BY member_id",
    )?;
    let member_ids = st
        .query_map([id], |r| r.get::<_, Id>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let role = Role::from_name(&role).unwrap_or(Role::MemberViewer);
    Ok(Some((
        User {
            id,
            email,
            name,
            role,
            force_id,
            region,
            member_ids,
            max_tlp: max_tlp.as_deref().and_then(Tlp::from_name),
        },
        hash,
    )))
}

fn load_collector(r: &rusqlite::Row<'_>) -> rusqlite::Result<Collector> {
    let stats: Option<String> = r.get(6)?;
    Ok(Collector {
        id: r.get(0)?,
        member_id: r.get(1)?,
        name: r.get(2)?,
        revoked: r.get::<_, Option<i64>>(3)?.is_some(),
        last_seen_ms: r.get(4)?,
        version: r.get(5)?,
        stats: stats.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

const COLLECTOR_COLS: &str =
    "c.id, c.member_id, c.name, c.revoked_ms, c.last_seen_ms, c.version, c.stats";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(be)?
    }

    fn open_blocking(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let mut w = Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        configure(&w).map_err(be)?;
        migrate(&mut w)?;
        let readers = (0..4)
            .map(|_| {
                let c = Connection::open(path).map_err(be)?;
                configure(&c).map_err(be)?;
                Ok(Arc::new(Mutex::new(c)))
            })
            .collect::<Result<Vec<_>>>()?;
        let writes = Arc::new(AtomicU64::new(0));
        let checkpointer = Checkpointer::start(path, writes.clone())?;
        let next: Id = w
            .query_row("SELECT next FROM event_ids", [], |r| r.get(0))
            .map_err(be)?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(w)),
            readers,
            next_reader: AtomicUsize::new(0),
            writes,
            next_id: Arc::new(AtomicI64::new(next)),
            _checkpointer: checkpointer,
        })
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let c = self.writer.clone();
        let writes = self.writes.clone();
        tokio::task::spawn_blocking(move || {
            let r = f(&mut lock(&c));
            writes.fetch_add(1, Ordering::Relaxed);
            r
        })
        .await
        .map_err(be)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let c = self.readers[i].clone();
        tokio::task::spawn_blocking(move || f(&lock(&c)))
            .await
            .map_err(be)?
    }
}

fn member_visible(c: &Connection, scope: &Scope, member_id: Id) -> Result<bool> {
    let (cond, mut p) = scope_sql(scope);
    p.insert(0, Value::Integer(member_id));
    let sql = format!("SELECT 1 FROM members m WHERE m.id = ? AND {cond}");
    c.query_row(&sql, params_from_iter(p), |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(be)
}

fn select_members(c: &Connection, scope: &Scope, id: Option<Id>) -> Result<Vec<Member>> {
    let (cond, mut p) = scope_sql(scope);
    let mut sql = format!(
        "SELECT m.id, m.force_id, m.name, m.networks, m.send_outbound FROM members m WHERE {cond}"
    );
    if let Some(id) = id {
        sql.push_str(" AND m.id = ?");
        p.push(Value::Integer(id));
    }
    sql.push_str(" ORDER BY m.name");
    let mut st = c.prepare_cached(&sql).map_err(be)?;
    let rows = st
        .query_map(params_from_iter(p), |r| {
            let nets: String = r.get(3)?;
            Ok(Member {
                id: r.get(0)?,
                force_id: r.get(1)?,
                name: r.get(2)?,
                networks: serde_json::from_str(&nets).unwrap_or_default(),
                send_outbound: r.get::<_, i64>(4)? != 0,
            })
        })
        .map_err(be)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(be)?;
    Ok(rows)
}

/// An address as SQLite stores it: the same text as `IpAddr`'s `Display`, without the
/// formatting machinery for IPv4 (the common case, and a measurable part of ingest).
fn ip_text(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push((b'0' + o / 100) as char);
                }
                if o >= 10 {
                    s.push((b'0' + o / 10 % 10) as char);
                }
                s.push((b'0' + o % 10) as char);
            }
            s
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// A batch's events laid out as blocks before the write lock is taken (encoding is most of
/// the cost of storing raw events, and the writer is the embedded hub's bottleneck): ids from
/// `base`, given one day after another so each day's block holds consecutive ids.
struct Planned {
    base: Id,
    /// The id of each event, in the batch's order.
    ids: Vec<Id>,
    /// `(day, block)`, in id order.
    blocks: Vec<(i64, block::Block)>,
}

fn plan_blocks(events: &[Event], base: Id) -> Result<Planned> {
    let days: Vec<i64> = events.iter().map(|e| day_of(e.time_ms)).collect();
    let mut order: Vec<usize> = (0..events.len()).collect();
    // Stable: within a day the batch's order, which is the usual case's whole batch.
    order.sort_by_key(|&i| days[i]);
    let mut ids = vec![0; events.len()];
    let mut blocks = Vec::new();
    let mut next = base;
    for group in order.chunk_by(|a, b| days[*a] == days[*b]) {
        for &i in group {
            ids[i] = next;
            next += 1;
        }
        if let Some(b) = block::encode(group.iter().map(|&i| (ids[i], &events[i])))? {
            blocks.push((days[group[0]], b));
        }
    }
    Ok(Planned { base, ids, blocks })
}

/// Whether no stored block holds an id in `base .. base + n`. Blocks hold disjoint ranges, so
/// only the one starting last before the range's end can reach into it.
fn ids_free(tx: &Transaction<'_>, base: Id, n: Id) -> Result<bool> {
    let last: Option<Id> = tx
        .prepare_cached(
            "SELECT last_id FROM event_blocks WHERE first_id < ? ORDER BY first_id DESC LIMIT 1",
        )
        .map_err(be)?
        .query_row([base + n], |r| r.get(0))
        .optional()
        .map_err(be)?;
    Ok(last.is_none_or(|l| l < base))
}

fn insert_block(
    tx: &Transaction<'_>,
    member_id: Id,
    collector_id: Id,
    day: i64,
    b: &block::Block,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO event_blocks (first_id, last_id, member_id, day, collector_id, min_time_ms, \
         max_time_ms, events, data) VALUES (?,?,?,?,?,?,?,?,?)",
    )
    .map_err(be)?
    .execute(params![
        b.first_id,
        b.last_id,
        member_id,
        day,
        collector_id,
        b.min_time_ms,
        b.max_time_ms,
        b.events,
        b.data
    ])
    .map_err(map_err)?;
    Ok(())
}

/// Stores the planned blocks, moving them to fresh ids first if another handle on the same
/// database took some of theirs since they were planned. Returns the events' ids.
fn store_blocks(
    tx: &Transaction<'_>,
    collector: &Collector,
    events: &[Event],
    mut plan: Planned,
    next_id: &AtomicI64,
) -> Result<Vec<Id>> {
    let n = events.len() as Id;
    if !ids_free(tx, plan.base, n)? {
        let next: Id = tx
            .query_row(
                "SELECT MAX((SELECT next FROM event_ids), \
                 COALESCE((SELECT MAX(last_id) FROM event_blocks), 0) + 1)",
                [],
                |r| r.get(0),
            )
            .map_err(be)?;
        let base = next.max(next_id.fetch_add(n, Ordering::Relaxed));
        plan = plan_blocks(events, base)?;
    }
    for (day, b) in &plan.blocks {
        insert_block(tx, collector.member_id, collector.id, *day, b)?;
    }
    let end = plan.base + n;
    tx.prepare_cached("UPDATE event_ids SET next = MAX(next, ?) WHERE one = 1")
        .map_err(be)?
        .execute([end])
        .map_err(be)?;
    next_id.fetch_max(end, Ordering::Relaxed);
    Ok(plan.ids)
}

/// Adds a batch's sums to the rollups: one upsert per distinct key.
fn upsert_rollups(tx: &Transaction<'_>, member_id: Id, r: &Rollups) -> Result<()> {
    let mut daily = tx
        .prepare_cached(
            "INSERT INTO rollup_daily (member_id, day, allowed, events) VALUES (?,?,?,?) \
             ON CONFLICT (member_id, day, allowed) DO UPDATE SET events = events + excluded.events",
        )
        .map_err(be)?;
    for ((day, allowed), n) in &r.daily {
        daily
            .execute(params![member_id, day, *allowed as i64, n])
            .map_err(be)?;
    }
    let mut src = tx
        .prepare_cached(
            "INSERT INTO rollup_src (member_id, day, src_ip, events) VALUES (?,?,?,?) \
             ON CONFLICT (member_id, day, src_ip) DO UPDATE SET events = events + excluded.events",
        )
        .map_err(be)?;
    for ((day, ip), n) in &r.src {
        src.execute(params![member_id, day, ip_text(ip), n])
            .map_err(be)?;
    }
    let mut port = tx
        .prepare_cached(
            "INSERT INTO rollup_port (member_id, day, protocol, dst_port, events) VALUES (?,?,?,?,?) \
             ON CONFLICT (member_id, day, protocol, dst_port) DO UPDATE SET events = events + excluded.events",
        )
        .map_err(be)?;
    for ((day, proto, p), n) in &r.port {
        port.execute(params![member_id, day, *proto as i64, *p as i64, n])
            .map_err(be)?;
    }
    Ok(())
}

/// The most events a converted block holds (a batch holds at most 32,768).
const CONVERTED_BLOCK_EVENTS: usize = 32_768;

/// Moves the rows of `events` (raw events, one row each, before schema version 8) into
/// blocks and drops that table. Runs inside the migration's transaction, so a database is
/// either wholly converted or untouched. Rows are read in id order and a block is a run of
/// them with one member, collector and day, so every block's id range holds only its own
/// events. Returns the events moved.
fn convert_event_rows(tx: &Transaction<'_>) -> Result<u64> {
    let exists: bool = tx
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .map_err(be)?;
    if !exists {
        return Ok(0);
    }
    let mut moved = 0u64;
    {
        let mut st = tx
            .prepare(&format!("SELECT {EVENT_COLS} FROM events e ORDER BY e.id"))
            .map_err(be)?;
        let mut rows = st.query([]).map_err(be)?;
        let key = |e: &StoredEvent| (e.member_id, e.collector_id, day_of(e.event.time_ms));
        let mut group: Vec<StoredEvent> = Vec::new();
        while let Some(r) = rows.next().map_err(be)? {
            let e = row_event(r).map_err(be)?;
            if group
                .first()
                .is_some_and(|g| key(g) != key(&e) || group.len() >= CONVERTED_BLOCK_EVENTS)
            {
                moved += flush_rows(tx, &mut group)?;
            }
            group.push(e);
        }
        moved += flush_rows(tx, &mut group)?;
    }
    tx.execute_batch("DROP TABLE events").map_err(be)?;
    Ok(moved)
}

/// Stores converted rows of one member, collector and day as a block and empties `group`.
fn flush_rows(tx: &Transaction<'_>, group: &mut Vec<StoredEvent>) -> Result<u64> {
    let Some(g) = group.first() else {
        return Ok(0);
    };
    let (member_id, collector_id, day) = (g.member_id, g.collector_id, day_of(g.event.time_ms));
    if let Some(b) = block::encode(group.iter().map(|e| (e.id, &e.event)))? {
        insert_block(tx, member_id, collector_id, day, &b)?;
    }
    let n = group.len() as u64;
    group.clear();
    Ok(n)
}

/// Folds observations into alerts (new, or grown within the deduplication window): one
/// lookup and one write per alert per batch ([`fold_observations`]).
fn upsert_alerts(
    tx: &Transaction<'_>,
    member_id: Id,
    events: &[Event],
    event_ids: &[Id],
    observations: &[Observation],
    window_ms: i64,
    now: i64,
) -> Result<(Vec<AlertKind>, u64)> {
    let (mut created, mut updated) = (Vec::new(), 0);
    if observations.is_empty() {
        return Ok((created, updated));
    }
    // The member's suppressions that could hold back anything in this batch, read once: a
    // member has a handful (one per alert it gave feedback on), a batch can touch thousands of
    // subjects.
    let earliest = events.iter().map(|e| e.time_ms).min().unwrap_or(i64::MIN);
    let suppressed: HashMap<(String, String), i64> = tx
        .prepare_cached(
            "SELECT kind, subject_ip, until_ms FROM suppressions WHERE member_id = ? AND until_ms > ?",
        )
        .map_err(be)?
        .query_map(params![member_id, earliest], |r| {
            Ok(((r.get(0)?, r.get(1)?), r.get(2)?))
        })
        .map_err(be)?
        .collect::<rusqlite::Result<_>>()
        .map_err(be)?;
    let mut live = Vec::with_capacity(observations.len());
    for o in observations {
        let Some(e) = events.get(o.event_index) else {
            return Err(StoreError::Invalid("observation refers to no event".into()));
        };
        // Held back by the member's feedback: the event is stored, the alert is not grown.
        if !suppressed.is_empty() {
            let key = (o.kind.as_str().to_owned(), ip_text(&o.subject_ip));
            if suppressed.get(&key).is_some_and(|u| e.time_ms < *u) {
                continue;
            }
        }
        live.push(o);
    }
    for d in fold_observations(events, live)? {
        let o = d.first;
        let existing: Option<(Id, String, String, String)> = tx
            .prepare_cached(
                "SELECT id, ports, lists, labels FROM alerts WHERE member_id = ? AND dedup_key = ? \
                 AND status != 'resolved' AND last_seen_ms >= ? ORDER BY last_seen_ms DESC LIMIT 1",
            )
            .map_err(be)?
            .query_row(params![member_id, o.dedup_key, d.first_ms - window_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(be)?;
        let (alert_id, fresh) = match existing {
            Some((id, ports, lists, labels)) => {
                let mut labels: Vec<ObservedLabel> =
                    serde_json::from_str(&labels).unwrap_or_default();
                watchhouse_detect::merge_labels(&mut labels, &d.labels);
                let mut ports: BTreeSet<u16> = serde_json::from_str(&ports).unwrap_or_default();
                for p in &d.ports {
                    if ports.len() < MAX_ALERT_PORTS {
                        ports.insert(*p);
                    }
                }
                let mut lists: BTreeSet<String> = serde_json::from_str(&lists).unwrap_or_default();
                lists.extend(d.lists.iter().cloned());
                tx.prepare_cached(
                    "UPDATE alerts SET event_count = event_count + ?, last_seen_ms = MAX(last_seen_ms, ?), \
                     first_seen_ms = MIN(first_seen_ms, ?), ports = ?, lists = ?, labels = ?, updated_ms = ? WHERE id = ?",
                )
                .map_err(be)?
                .execute(params![
                    d.events,
                    d.last_ms,
                    d.first_ms,
                    serde_json::to_string(&ports).map_err(be)?,
                    serde_json::to_string(&lists).map_err(be)?,
                    serde_json::to_string(&labels).map_err(be)?,
                    now,
                    id
                ])
                .map_err(be)?;
                updated += d.observations;
                (id, false)
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO alerts (member_id, kind, severity, dedup_key, subject_ip, lists, ports, \
                     event_count, first_seen_ms, last_seen_ms, status, created_ms, updated_ms, labels) \
                     VALUES (?,?,?,?,?,?,?,?,?,?,'new',?,?,?)",
                )
                .map_err(be)?
                .execute(params![
                    member_id,
                    o.kind.as_str(),
                    o.severity.as_str(),
                    o.dedup_key,
                    ip_text(&o.subject_ip),
                    serde_json::to_string(&d.lists).map_err(be)?,
                    serde_json::to_string(&d.ports).map_err(be)?,
                    d.events,
                    d.first_ms,
                    d.last_ms,
                    now,
                    now,
                    serde_json::to_string(&d.labels).map_err(be)?
                ])
                .map_err(be)?;
                created.push(o.kind);
                updated += d.observations - 1;
                (tx.last_insert_rowid(), true)
            }
        };
        let linked: i64 = if fresh {
            0 // just created: nothing linked yet
        } else {
            tx.prepare_cached("SELECT COUNT(*) FROM alert_events WHERE alert_id = ?")
                .map_err(be)?
                .query_row([alert_id], |r| r.get(0))
                .map_err(be)?
        };
        let room = MAX_ALERT_EVIDENCE.saturating_sub(linked.max(0) as usize);
        for i in d.event_indices.iter().take(room) {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO alert_events (alert_id, event_id) VALUES (?, ?)",
            )
            .map_err(be)?
            .execute(params![alert_id, event_ids[*i]])
            .map_err(be)?;
        }
    }
    Ok((created, updated))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_force(&self, name: &str, region: &str) -> Result<Force> {
        let (name, region) = (name.to_owned(), region.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO forces (name, region, created_ms) VALUES (?, ?, ?)",
                params![name, region, now_ms()],
            )
            .map_err(map_err)?;
            Ok(Force {
                id: c.last_insert_rowid(),
                name,
                region,
            })
        })
        .await
    }

    async fn list_forces(&self, scope: &Scope) -> Result<Vec<Force>> {
        let scope = scope.clone();
        self.read(move |c| {
            let (sql, p) = match &scope {
                Scope::All => ("SELECT id, name, region FROM forces ORDER BY name".to_owned(), vec![]),
                Scope::Region(r) => (
                    "SELECT id, name, region FROM forces WHERE region = ? ORDER BY name".to_owned(),
                    vec![Value::Text(r.clone())],
                ),
                Scope::Force(f) => (
                    "SELECT id, name, region FROM forces WHERE id = ?".to_owned(),
                    vec![Value::Integer(*f)],
                ),
                Scope::Members(_) => {
                    let (cond, p) = scope_sql(&scope);
                    (
                        format!(
                            "SELECT DISTINCT f.id, f.name, f.region FROM forces f JOIN members m ON m.force_id = f.id WHERE {cond} ORDER BY f.name"
                        ),
                        p,
                    )
                }
            };
            let mut st = c.prepare(&sql).map_err(be)?;
            let rows = st
                .query_map(params_from_iter(p), |r| {
                    Ok(Force {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        region: r.get(2)?,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(rows)
        })
        .await
    }

    async fn create_member(
        &self,
        force_id: Id,
        name: &str,
        networks: &[String],
        send_outbound: bool,
    ) -> Result<Member> {
        let name = name.to_owned();
        let networks = networks.to_vec();
        self.write(move |c| {
            c.execute(
                "INSERT INTO members (force_id, name, networks, send_outbound, created_ms) VALUES (?, ?, ?, ?, ?)",
                params![
                    force_id,
                    name,
                    serde_json::to_string(&networks).map_err(be)?,
                    send_outbound as i64,
                    now_ms()
                ],
            )
            .map_err(map_err)?;
            Ok(Member {
                id: c.last_insert_rowid(),
                force_id,
                name,
                networks,
                send_outbound,
            })
        })
        .await
    }

    async fn list_members(&self, scope: &Scope) -> Result<Vec<Member>> {
        let scope = scope.clone();
        self.read(move |c| select_members(c, &scope, None)).await
    }

    async fn get_member(&self, scope: &Scope, id: Id) -> Result<Option<Member>> {
        let scope = scope.clone();
        self.read(move |c| Ok(select_members(c, &scope, Some(id))?.into_iter().next()))
            .await
    }

    async fn create_user(&self, u: NewUser) -> Result<User> {
        self.write(move |c| {
            validate_new_user(&u)?;
            let tx = c.transaction().map_err(be)?;
            tx.execute(
                "INSERT INTO users (email, name, password_hash, role, force_id, region, created_ms, max_tlp) VALUES (?,?,?,?,?,?,?,?)",
                params![u.email.trim(), u.name, u.password_hash, u.role.as_str(), u.force_id, u.region, now_ms(), u.max_tlp.map(|t| t.as_str())],
            )
            .map_err(map_err)?;
            let id = tx.last_insert_rowid();
            for m in &u.member_ids {
                tx.execute(
                    "INSERT INTO user_members (user_id, member_id) VALUES (?, ?)",
                    params![id, m],
                )
                .map_err(map_err)?;
            }
            let user = load_user(&tx, id).map_err(be)?.map(|(u, _)| u);
            tx.commit().map_err(be)?;
            user.ok_or_else(|| StoreError::Backend("user vanished".into()))
        })
        .await
    }

    async fn set_password(&self, email: &str, password_hash: &str) -> Result<()> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE users SET password_hash = ? WHERE email = ? COLLATE NOCASE",
                    params![hash, email],
                )
                .map_err(be)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user with email {email}")));
            }
            // Changing a password ends every session of that user.
            c.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ? COLLATE NOCASE)",
                [&email],
            )
            .map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        let email = email.trim().to_owned();
        self.read(move |c| {
            let id: Option<Id> = c
                .query_row(
                    "SELECT id FROM users WHERE email = ? COLLATE NOCASE AND disabled = 0",
                    [&email],
                    |r| r.get(0),
                )
                .optional()
                .map_err(be)?;
            match id {
                Some(id) => load_user(c, id).map_err(be),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list_users(&self, scope: &Scope) -> Result<Vec<User>> {
        let scope = scope.clone();
        self.read(move |c| {
            let ids: Vec<Id> = {
                let mut st = c
                    .prepare("SELECT id FROM users ORDER BY email")
                    .map_err(be)?;
                let v = st
                    .query_map([], |r| r.get(0))
                    .map_err(be)?
                    .collect::<rusqlite::Result<Vec<Id>>>()
                    .map_err(be)?;
                v
            };
            let mut out = Vec::new();
            for id in ids {
                if let Some((u, _)) = load_user(c, id).map_err(be)? {
                    if scope.sees_user(&u) {
                        out.push(u);
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: Id,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        let (t, csrf) = (token_hash.to_owned(), csrf.to_owned());
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE expires_ms < ?", [now_ms])
                .map_err(be)?;
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_ms, expires_ms) VALUES (?,?,?,?,?)",
                params![t, user_id, csrf, now_ms, expires_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>> {
        let t = token_hash.to_owned();
        self.read(move |c| {
            let row: Option<(Id, String, i64)> = c
                .query_row(
                    "SELECT s.user_id, s.csrf, s.expires_ms FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = ? AND s.expires_ms > ? AND u.disabled = 0",
                    params![t, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(be)?;
            let Some((uid, csrf, expires_ms)) = row else {
                return Ok(None);
            };
            Ok(load_user(c, uid).map_err(be)?.map(|(user, _)| Session {
                user,
                csrf,
                expires_ms,
            }))
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let t = token_hash.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?", [t])
                .map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn create_enrolment_token(
        &self,
        member_id: Id,
        token_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        let t = token_hash.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT INTO enrolment_tokens (token_hash, member_id, created_ms, expires_ms) VALUES (?,?,?,?)",
                params![t, member_id, now_ms, expires_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn redeem_enrolment_token(
        &self,
        token_hash: &str,
        name: &str,
        credential_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Collector>> {
        let (t, name, cred) = (
            token_hash.to_owned(),
            name.to_owned(),
            credential_hash.to_owned(),
        );
        self.write(move |c| {
            let tx = c.transaction().map_err(be)?;
            let member: Option<Id> = tx
                .query_row(
                    "SELECT member_id FROM enrolment_tokens WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ?",
                    params![t, now_ms],
                    |r| r.get(0),
                )
                .optional()
                .map_err(be)?;
            let Some(member_id) = member else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO collectors (member_id, name, credential_hash, created_ms) VALUES (?,?,?,?)",
                params![member_id, name, cred, now_ms],
            )
            .map_err(map_err)?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE enrolment_tokens SET used_ms = ?, collector_id = ? WHERE token_hash = ?",
                params![now_ms, id, t],
            )
            .map_err(be)?;
            tx.commit().map_err(be)?;
            Ok(Some(Collector {
                id,
                member_id,
                name,
                revoked: false,
                last_seen_ms: None,
                version: None,
                stats: None,
            }))
        })
        .await
    }

    async fn collector_by_credential(&self, credential_hash: &str) -> Result<Option<Collector>> {
        let h = credential_hash.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!(
                    "SELECT {COLLECTOR_COLS} FROM collectors c WHERE c.credential_hash = ? AND c.revoked_ms IS NULL"
                ),
                [h],
                load_collector,
            )
            .optional()
            .map_err(be)
        })
        .await
    }

    async fn revoke_collector(&self, scope: &Scope, id: Id) -> Result<bool> {
        let scope = scope.clone();
        self.write(move |c| {
            let (cond, mut p) = scope_sql(&scope);
            p.insert(0, Value::Integer(now_ms()));
            p.insert(1, Value::Integer(id));
            let sql = format!(
                "UPDATE collectors SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL AND member_id IN \
                 (SELECT m.id FROM members m WHERE {cond})"
            );
            Ok(c.execute(&sql, params_from_iter(p)).map_err(be)? > 0)
        })
        .await
    }

    async fn collector_heartbeat(
        &self,
        collector_id: Id,
        version: &str,
        stats: &watchhouse_proto::CollectorStats,
        now_ms: i64,
    ) -> Result<()> {
        let version = version.to_owned();
        let stats = serde_json::to_string(stats).map_err(be)?;
        self.write(move |c| {
            c.execute(
                "UPDATE collectors SET last_seen_ms = ?, version = ?, stats = ? WHERE id = ? AND revoked_ms IS NULL",
                params![now_ms, version, stats, collector_id],
            )
            .map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn list_collectors(
        &self,
        scope: &Scope,
        member_id: Option<Id>,
    ) -> Result<Vec<Collector>> {
        let scope = scope.clone();
        self.read(move |c| {
            let (cond, mut p) = scope_sql(&scope);
            let mut sql = format!(
                "SELECT {COLLECTOR_COLS} FROM collectors c JOIN members m ON m.id = c.member_id WHERE {cond}"
            );
            if let Some(mid) = member_id {
                sql.push_str(" AND c.member_id = ?");
                p.push(Value::Integer(mid));
            }
            sql.push_str(" ORDER BY c.id");
            let mut st = c.prepare(&sql).map_err(be)?;
            let v = st
                .query_map(params_from_iter(p), load_collector)
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn ingest(
        &self,
        collector: &Collector,
        batch: &Batch,
        events: Vec<Event>,
        observations: Vec<Observation>,
        dedup_window_ms: i64,
        now_ms: i64,
    ) -> Result<IngestOutcome> {
        let collector = collector.clone();
        let batch_id = batch.batch_id.to_string();
        let version = batch.collector_version.clone();
        let stats = match &batch.stats {
            Some(s) => Some(serde_json::to_string(s).map_err(be)?),
            None => None,
        };
        // The events encoded and compressed, and the rollups summed, before the write lock is
        // taken, on ids reserved from this handle's counter (checked, and moved if taken, in
        // the transaction).
        let n = events.len() as Id;
        let base = self.next_id.fetch_add(n, Ordering::Relaxed);
        let (events, plan, sums) = tokio::task::spawn_blocking(move || {
            let plan = plan_blocks(&events, base)?;
            let sums = rollups(&events);
            Ok::<_, StoreError>((events, plan, sums))
        })
        .await
        .map_err(be)??;
        let next_id = self.next_id.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(be)?;
            let prior: Option<i64> = tx
                .query_row(
                    "SELECT accepted FROM ingest_batches WHERE collector_id = ? AND batch_id = ?",
                    params![collector.id, batch_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(be)?;
            if let Some(accepted) = prior {
                // A retry of a batch we already hold: store nothing, but note the contact.
                tx.execute(
                    "UPDATE collectors SET last_seen_ms = ? WHERE id = ?",
                    params![now_ms, collector.id],
                )
                .map_err(be)?;
                tx.commit().map_err(be)?;
                return Ok(IngestOutcome {
                    accepted: accepted as u64,
                    duplicate: true,
                    ..Default::default()
                });
            }
            tx.execute(
                "INSERT INTO ingest_batches (collector_id, batch_id, accepted, received_ms) VALUES (?,?,?,?)",
                params![collector.id, batch_id, events.len() as i64, now_ms],
            )
            .map_err(map_err)?;
            let ids = store_blocks(&tx, &collector, &events, plan, &next_id)?;
            upsert_rollups(&tx, collector.member_id, &sums)?;
            let (alerts_created, alerts_updated) = upsert_alerts(
                &tx,
                collector.member_id,
                &events,
                &ids,
                &observations,
                dedup_window_ms,
                now_ms,
            )?;
            let out = IngestOutcome {
                accepted: events.len() as u64,
                duplicate: false,
                alerts_created,
                alerts_updated,
            };
            tx.execute(
                "UPDATE collectors SET last_seen_ms = ?, version = ?, stats = COALESCE(?, stats) WHERE id = ?",
                params![now_ms, version, stats, collector.id],
            )
            .map_err(be)?;
            tx.commit().map_err(be)?;
            Ok(out)
        })
        .await
    }

    async fn expire_events(&self, before_day: i64) -> Result<()> {
        self.write(move |c| {
            let tx = c.transaction().map_err(be)?;
            let ranges: Vec<(Id, Id)> = tx
                .prepare(
                    "SELECT first_id, last_id FROM event_blocks WHERE day < ? ORDER BY first_id",
                )
                .map_err(be)?
                .query_map([before_day], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(be)?
                .collect::<rusqlite::Result<_>>()
                .map_err(be)?;
            if ranges.is_empty() {
                return Ok(());
            }
            // Evidence links to the events going: alerts keep at most a few dozen links each,
            // so one pass over the links, each looked up among the ranges.
            let held = |id: Id| {
                let k = ranges.partition_point(|r| r.0 <= id);
                k > 0 && id <= ranges[k - 1].1
            };
            let links: Vec<(Id, Id)> = tx
                .prepare("SELECT alert_id, event_id FROM alert_events")
                .map_err(be)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(be)?
                .filter(|l| l.as_ref().map_or(true, |(_, e)| held(*e)))
                .collect::<rusqlite::Result<_>>()
                .map_err(be)?;
            {
                let mut del = tx
                    .prepare("DELETE FROM alert_events WHERE alert_id = ? AND event_id = ?")
                    .map_err(be)?;
                for (a, e) in links {
                    del.execute(params![a, e]).map_err(be)?;
                }
            }
            tx.execute("DELETE FROM event_blocks WHERE day < ?", [before_day])
                .map_err(be)?;
            tx.commit().map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn recent_events(
        &self,
        scope: &Scope,
        member_id: Id,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let scope = scope.clone();
        self.read(move |c| {
            let mut out = block::Newest::new(limit.min(1000) as usize);
            if !out.wants(i64::MAX) || !member_visible(c, &scope, member_id)? {
                return Ok(out.into_events());
            }
            // Blocks newest first (by their latest event), a page at a time, growing: a busy
            // member's newest block usually holds enough, a quiet one's events are spread thin.
            let mut st = c
                .prepare_cached(
                    "SELECT max_time_ms, first_id, collector_id, data FROM event_blocks \
                     WHERE member_id = ?1 AND (max_time_ms, first_id) < (?2, ?3) \
                     ORDER BY max_time_ms DESC, first_id DESC LIMIT ?4",
                )
                .map_err(be)?;
            let mut after = (i64::MAX, Id::MAX);
            let mut page = 2i64;
            loop {
                let blocks: Vec<(i64, Id, Id, Vec<u8>)> = st
                    .query_map(params![member_id, after.0, after.1, page], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(be)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(be)?;
                for (newest, first_id, collector_id, data) in &blocks {
                    if !out.wants(*newest) {
                        return Ok(out.into_events());
                    }
                    after = (*newest, *first_id);
                    out.add(member_id, *collector_id, data)?;
                }
                if (blocks.len() as i64) < page {
                    return Ok(out.into_events());
                }
                page = (page * 2).min(64);
            }
        })
        .await
    }

    async fn event_total(&self, scope: &Scope, member_id: Id) -> Result<u64> {
        let scope = scope.clone();
        self.read(move |c| {
            if !member_visible(c, &scope, member_id)? {
                return Ok(0);
            }
            let n: i64 = c
                .query_row(
                    "SELECT COALESCE(SUM(events), 0) FROM rollup_daily WHERE member_id = ?",
                    [member_id],
                    |r| r.get(0),
                )
                .map_err(be)?;
            Ok(n as u64)
        })
        .await
    }

    async fn alerts(&self, scope: &Scope, member_id: Option<Id>, limit: u32) -> Result<Vec<Alert>> {
        let scope = scope.clone();
        self.read(move |c| {
            let (cond, mut p) = scope_sql(&scope);
            let mut sql = format!(
                "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id WHERE {cond}"
            );
            if let Some(mid) = member_id {
                sql.push_str(" AND a.member_id = ?");
                p.push(Value::Integer(mid));
            }
            sql.push_str(
                " ORDER BY CASE a.status WHEN 'resolved' THEN 1 ELSE 0 END, \
                 CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, \
                 a.last_seen_ms DESC LIMIT ?",
            );
            p.push(Value::Integer(limit.min(1000) as i64));
            let mut st = c.prepare(&sql).map_err(be)?;
            let v = st
                .query_map(params_from_iter(p), row_alert)
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn alert(&self, scope: &Scope, id: Id) -> Result<Option<(Alert, Vec<StoredEvent>)>> {
        let scope = scope.clone();
        self.read(move |c| {
            let (cond, mut p) = scope_sql(&scope);
            p.insert(0, Value::Integer(id));
            let sql = format!(
                "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.id = ? AND {cond}"
            );
            let Some(alert) = c
                .query_row(&sql, params_from_iter(p), row_alert)
                .optional()
                .map_err(be)?
            else {
                return Ok(None);
            };
            let ids: Vec<Id> = c
                .prepare_cached(
                    "SELECT event_id FROM alert_events WHERE alert_id = ? ORDER BY event_id",
                )
                .map_err(be)?
                .query_map([id], |r| r.get(0))
                .map_err(be)?
                .collect::<rusqlite::Result<_>>()
                .map_err(be)?;
            // Each linked event's block is the one starting last at or before its id; the
            // ids are sorted, so each block is read once for all of its events.
            let mut find = c
                .prepare_cached(
                    "SELECT first_id, last_id, member_id, collector_id, data FROM event_blocks \
                     WHERE first_id <= ? ORDER BY first_id DESC LIMIT 1",
                )
                .map_err(be)?;
            let mut evidence = Vec::new();
            let mut rest = &ids[..];
            while let Some(&next) = rest.first() {
                let found: Option<(Id, Id, Id, Id, Vec<u8>)> = find
                    .query_row([next], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                    .map_err(be)?;
                let Some((_, last_id, member_id, collector_id, data)) = found else {
                    rest = &rest[1..];
                    continue;
                };
                let here = rest.partition_point(|&e| e <= last_id).max(1);
                // An id past the block's end, or another member's block, is an event already
                // gone (retention): nothing to show for it.
                if member_id == alert.member_id && next <= last_id {
                    let wanted = &rest[..here];
                    evidence.extend(block::decode_where(member_id, collector_id, &data, |e| {
                        wanted.binary_search(&e).is_ok()
                    })?);
                }
                rest = &rest[here..];
            }
            evidence.sort_unstable_by_key(|e| (e.event.time_ms, e.id));
            Ok(Some((alert, evidence)))
        })
        .await
    }

    async fn set_alert_status(&self, scope: &Scope, id: Id, status: AlertStatus) -> Result<bool> {
        let scope = scope.clone();
        self.write(move |c| {
            let (cond, mut p) = scope_sql(&scope);
            p.insert(0, Value::Text(status.as_str().to_owned()));
            p.insert(1, Value::Integer(now_ms()));
            p.insert(2, Value::Integer(id));
            let sql = format!(
                "UPDATE alerts SET status = ?, updated_ms = ? WHERE id = ? AND member_id IN (SELECT m.id FROM members m WHERE {cond})"
            );
            Ok(c.execute(&sql, params_from_iter(p)).map_err(be)? > 0)
        })
        .await
    }

    async fn set_alert_feedback(&self, scope: &Scope, id: Id, f: FeedbackEntry) -> Result<bool> {
        let scope = scope.clone();
        let FeedbackEntry {
            feedback,
            note,
            by,
            now_ms,
            suppress_until_ms,
        } = f;
        self.write(move |c| {
            let tx = c.transaction().map_err(be)?;
            let (cond, p) = scope_sql(&scope);
            let sql = format!(
                "SELECT a.member_id, a.kind, a.subject_ip FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.id = ? AND {cond}"
            );
            let mut params: Vec<Value> = vec![Value::Integer(id)];
            params.extend(p);
            let row: Option<(Id, String, String)> = tx
                .query_row(&sql, params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(be)?;
            let Some((member_id, kind, subject)) = row else {
                return Ok(false);
            };
            let resolve = feedback != Feedback::Confirmed;
            tx.execute(
                "UPDATE alerts SET feedback = ?, feedback_note = ?, feedback_by = ?, feedback_ms = ?, \
                 status = CASE WHEN ? THEN 'resolved' ELSE status END, updated_ms = ? WHERE id = ?",
                params![feedback.as_str(), note, by, now_ms, resolve, now_ms, id],
            )
            .map_err(be)?;
            if resolve {
                tx.execute(
                    "INSERT INTO suppressions (member_id, kind, subject_ip, until_ms, reason, created_by, created_ms) \
                     VALUES (?,?,?,?,?,?,?) ON CONFLICT (member_id, kind, subject_ip) DO UPDATE SET \
                     until_ms = excluded.until_ms, reason = excluded.reason, created_by = excluded.created_by",
                    params![member_id, kind, subject, suppress_until_ms, feedback.as_str(), by, now_ms],
                )
                .map_err(be)?;
            } else {
                tx.execute(
                    "DELETE FROM suppressions WHERE member_id = ? AND kind = ? AND subject_ip = ?",
                    params![member_id, kind, subject],
                )
                .map_err(be)?;
            }
            tx.commit().map_err(be)?;
            Ok(true)
        })
        .await
    }

    async fn alerts_after(&self, after_id: Id, limit: u32) -> Result<Vec<Alert>> {
        self.read(move |c| {
            let sql = format!(
                "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.id > ? ORDER BY a.id LIMIT ?"
            );
            let mut st = c.prepare(&sql).map_err(be)?;
            let v = st
                .query_map(params![after_id, limit], row_alert)
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn alerts_created_between(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        let scope = scope.clone();
        self.read(move |c| {
            let (cond, p) = scope_sql(&scope);
            let sql = format!(
                "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id \
                 WHERE a.created_ms >= ? AND a.created_ms < ? AND {cond} ORDER BY a.created_ms DESC LIMIT ?"
            );
            let mut params: Vec<Value> = vec![Value::Integer(from_ms), Value::Integer(to_ms)];
            params.extend(p);
            params.push(Value::Integer(limit as i64));
            let mut st = c.prepare(&sql).map_err(be)?;
            let v = st
                .query_map(params_from_iter(params), row_alert)
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn notify_prefs(&self, user_id: Id) -> Result<(bool, bool)> {
        self.read(move |c| {
            c.query_row(
                "SELECT notify_urgent, notify_digest FROM users WHERE id = ?",
                [user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(be)?
            .ok_or_else(|| StoreError::NotFound("user".into()))
        })
        .await
    }

    async fn set_notify_prefs(&self, user_id: Id, urgent: bool, digest: bool) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE users SET notify_urgent = ?, notify_digest = ? WHERE id = ?",
                params![urgent, digest, user_id],
            )
            .map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn add_webhook(
        &self,
        scope: &Scope,
        member_id: Id,
        url: &str,
        secret: &str,
    ) -> Result<Option<Webhook>> {
        let (scope, url, secret) = (scope.clone(), url.to_owned(), secret.to_owned());
        self.write(move |c| {
            if select_members(c, &scope, Some(member_id))?.is_empty() {
                return Ok(None);
            }
            let now = now_ms();
            c.execute(
                "INSERT INTO webhooks (member_id, url, secret, created_ms) VALUES (?,?,?,?)",
                params![member_id, url, secret, now],
            )
            .map_err(map_err)?;
            Ok(Some(Webhook {
                id: c.last_insert_rowid(),
                member_id,
                url,
                secret,
                created_ms: now,
            }))
        })
        .await
    }

    async fn list_webhooks(&self, scope: &Scope, member_id: Id) -> Result<Option<Vec<Webhook>>> {
        let scope = scope.clone();
        self.read(move |c| {
            if select_members(c, &scope, Some(member_id))?.is_empty() {
                return Ok(None);
            }
            let mut st = c
                .prepare("SELECT id, member_id, url, secret, created_ms FROM webhooks WHERE member_id = ? ORDER BY id")
                .map_err(be)?;
            let v = st
                .query_map([member_id], |r| {
                    Ok(Webhook {
                        id: r.get(0)?,
                        member_id: r.get(1)?,
                        url: r.get(2)?,
                        secret: r.get(3)?,
                        created_ms: r.get(4)?,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(Some(v))
        })
        .await
    }

    async fn delete_webhook(&self, scope: &Scope, member_id: Id, id: Id) -> Result<bool> {
        let scope = scope.clone();
        self.write(move |c| {
            if select_members(c, &scope, Some(member_id))?.is_empty() {
                return Ok(false);
            }
            let n = c
                .execute(
                    "DELETE FROM webhooks WHERE id = ? AND member_id = ?",
                    params![id, member_id],
                )
                .map_err(be)?;
            Ok(n == 1)
        })
        .await
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let k = key.to_owned();
        self.read(move |c| {
            c.query_row("SELECT value FROM kv WHERE key = ?", [k], |r| r.get(0))
                .optional()
                .map_err(be)
        })
        .await
    }

    async fn kv_set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (key.to_owned(), value.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO kv (key, value) VALUES (?,?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )
            .map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let (n, h) = (name.to_owned(), holder.to_owned());
        self.write(move |c| {
            let changed = c
                .execute(
                    "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
                     WHERE leases.holder = excluded.holder OR leases.until_ms <= ?4",
                    params![n, h, now_ms.saturating_add(ttl_ms), now_ms],
                )
                .map_err(be)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn live_leases(&self, prefix: &str, now_ms: i64) -> Result<Vec<(String, String)>> {
        let prefix = prefix.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT name, holder FROM leases WHERE substr(name, 1, length(?1)) = ?1 AND until_ms > ?2 ORDER BY name",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![prefix, now_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn disputed_addresses(
        &self,
        since_ms: i64,
        min_members: u32,
    ) -> Result<Vec<(IpAddr, u32)>> {
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT subject_ip, COUNT(DISTINCT member_id) AS n FROM alerts \
                     WHERE feedback = 'false_positive' AND feedback_ms >= ? \
                     AND kind IN ('listed_source_inbound', 'listed_destination_outbound') \
                     GROUP BY subject_ip HAVING n >= ? ORDER BY n DESC, subject_ip",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![since_ms, min_members.max(1)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v.into_iter()
                .filter_map(|(ip, n)| ip.parse().ok().map(|ip| (ip, n as u32)))
                .collect())
        })
        .await
    }

    async fn daily_counts(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayCount>> {
        let scope = scope.clone();
        self.read(move |c| {
            if !member_visible(c, &scope, member_id)? {
                return Ok(vec![]);
            }
            let mut st = c
                .prepare_cached(
                    "SELECT day, allowed, events FROM rollup_daily WHERE member_id = ? AND day BETWEEN ? AND ? ORDER BY day",
                )
                .map_err(be)?;
            let rows = st
                .query_map(params![member_id, from_day, to_day], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            let mut out: Vec<DayCount> = (from_day..=to_day)
                .map(|day| DayCount {
                    day,
                    blocked: 0,
                    allowed: 0,
                })
                .collect();
            for (day, allowed, n) in rows {
                if let Some(d) = out.get_mut((day - from_day) as usize) {
                    if allowed != 0 {
                        d.allowed += n as u64;
                    } else {
                        d.blocked += n as u64;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn top_sources(
        &self,
        scope: &Scope,
        member_id: Id,
        since_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        let scope = scope.clone();
        self.read(move |c| {
            if !member_visible(c, &scope, member_id)? {
                return Ok(vec![]);
            }
            let mut st = c
                .prepare_cached(
                    "SELECT src_ip, SUM(events) AS n FROM rollup_src WHERE member_id = ? AND day >= ? \
                     GROUP BY src_ip ORDER BY n DESC, src_ip LIMIT ?",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![member_id, since_day, n.min(100)], |r| {
                    Ok(TopItem {
                        key: r.get(0)?,
                        events: r.get::<_, i64>(1)? as u64,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn top_ports(
        &self,
        scope: &Scope,
        member_id: Id,
        since_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        let scope = scope.clone();
        self.read(move |c| {
            if !member_visible(c, &scope, member_id)? {
                return Ok(vec![]);
            }
            let mut st = c
                .prepare_cached(
                    "SELECT protocol, dst_port, SUM(events) AS n FROM rollup_port WHERE member_id = ? AND day >= ? \
                     GROUP BY protocol, dst_port ORDER BY n DESC, dst_port LIMIT ?",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![member_id, since_day, n.min(100)], |r| {
                    let proto = IpProto(r.get::<_, i64>(0)? as u8);
                    Ok(TopItem {
                        key: format!("{}/{}", proto, r.get::<_, i64>(1)?),
                        events: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn top_sources_between(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        let scope = scope.clone();
        self.read(move |c| {
            if !member_visible(c, &scope, member_id)? {
                return Ok(vec![]);
            }
            let mut st = c
                .prepare_cached(
                    "SELECT src_ip, SUM(events) AS n FROM rollup_src WHERE member_id = ? AND day >= ? AND day <= ? \
                     GROUP BY src_ip ORDER BY n DESC, src_ip LIMIT ?",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![member_id, from_day, to_day, n.min(100)], |r| {
                    Ok(TopItem {
                        key: r.get(0)?,
                        events: r.get::<_, i64>(1)? as u64,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn top_ports_between(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        let scope = scope.clone();
        self.read(move |c| {
            if !member_visible(c, &scope, member_id)? {
                return Ok(vec![]);
            }
            let mut st = c
                .prepare_cached(
                    "SELECT protocol, dst_port, SUM(events) AS n FROM rollup_port WHERE member_id = ? AND day >= ? AND day <= ? \
                     GROUP BY protocol, dst_port ORDER BY n DESC, dst_port LIMIT ?",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![member_id, from_day, to_day, n.min(100)], |r| {
                    let proto = IpProto(r.get::<_, i64>(0)? as u8);
                    Ok(TopItem {
                        key: format!("{}/{}", proto, r.get::<_, i64>(1)?),
                        events: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn evidence(&self, scope: &Scope, from_ms: i64, to_ms: i64) -> Result<Evidence> {
        let scope = scope.clone();
        self.read(move |c| {
            let (cond, p) = scope_sql(&scope);
            let q1 = |sql: &str, extra: &[Value]| -> Result<i64> {
                let mut params: Vec<Value> = extra.to_vec();
                params.extend(p.iter().cloned());
                c.query_row(sql, params_from_iter(params), |r| r.get::<_, Option<i64>>(0))
                    .map(|v| v.unwrap_or(0))
                    .map_err(be)
            };
            let (d0, d1) = (from_ms.div_euclid(86_400_000), (to_ms - 1).div_euclid(86_400_000));
            let range = [Value::Integer(from_ms), Value::Integer(to_ms)];
            let days = [Value::Integer(d0), Value::Integer(d1)];
            let mut e = Evidence {
                members: q1(&format!("SELECT COUNT(*) FROM members m WHERE {cond}"), &[])? as u64,
                members_reporting: q1(
                    &format!("SELECT COUNT(DISTINCT r.member_id) FROM rollup_daily r JOIN members m ON m.id = r.member_id WHERE r.day >= ? AND r.day <= ? AND {cond}"),
                    &days,
                )? as u64,
                events: q1(
                    &format!("SELECT SUM(r.events) FROM rollup_daily r JOIN members m ON m.id = r.member_id WHERE r.day >= ? AND r.day <= ? AND {cond}"),
                    &days,
                )? as u64,
                members_affected: q1(
                    &format!("SELECT COUNT(DISTINCT a.member_id) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.created_ms >= ? AND a.created_ms < ? AND {cond}"),
                    &range,
                )? as u64,
                alerts_acted_on: q1(
                    &format!("SELECT COUNT(*) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.created_ms >= ? AND a.created_ms < ? AND (a.status != 'new' OR a.feedback IS NOT NULL) AND {cond}"),
                    &range,
                )? as u64,
                open_urgent: q1(
                    &format!("SELECT COUNT(*) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.status != 'resolved' AND a.severity IN ('high', 'critical') AND {cond}"),
                    &[],
                )? as u64,
                ..Evidence::default()
            };
            for (col, map) in [("severity", &mut e.alerts_by_severity), ("kind", &mut e.alerts_by_kind)] {
                let sql = format!(
                    "SELECT a.{col}, COUNT(*) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.created_ms >= ? AND a.created_ms < ? AND {cond} GROUP BY a.{col}"
                );
                let mut params: Vec<Value> = range.to_vec();
                params.extend(p.iter().cloned());
                let mut st = c.prepare(&sql).map_err(be)?;
                let rows = st
                    .query_map(params_from_iter(params), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(be)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(be)?;
                for (k, n) in rows {
                    map.insert(k, n as u64);
                }
            }
            let sql = format!(
                "SELECT MAX(COALESCE(a.feedback_ms, 0), a.updated_ms) - a.created_ms FROM alerts a JOIN members m ON m.id = a.member_id \
                 WHERE a.created_ms >= ? AND a.created_ms < ? AND (a.status != 'new' OR a.feedback IS NOT NULL) AND {cond}"
            );
            let mut params: Vec<Value> = range.to_vec();
            params.extend(p.iter().cloned());
            let mut st = c.prepare(&sql).map_err(be)?;
            let mut waits = st
                .query_map(params_from_iter(params), |r| r.get::<_, i64>(0))
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            waits.sort_unstable();
            e.median_minutes_to_act = waits.get(waits.len() / 2).map(|ms| (*ms).max(0) as f64 / 60_000.0);
            Ok(e)
        })
        .await
    }

    async fn member_event_totals(&self, from_day: i64, to_day: i64) -> Result<Vec<(Id, u64)>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT member_id, SUM(events) FROM rollup_daily WHERE day >= ? AND day <= ? GROUP BY member_id ORDER BY member_id",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![from_day, to_day], |r| Ok((r.get::<_, Id>(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn add_indicator(&self, i: NewIndicator) -> Result<StoredIndicator> {
        self.write(move |c| {
            if i.confidence > 100 {
                return Err(StoreError::Invalid("confidence is 0–100".into()));
            }
            if i.category.len() > 64 || i.description.len() > 4096 {
                return Err(StoreError::Invalid("category or description too long".into()));
            }
            let now = now_ms();
            c.execute(
                "INSERT INTO indicators (value, kind, category, confidence, tlp, valid_until_ms, description, \
                 created_by, created_ms, modified_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
                params![
                    i.value.to_string(),
                    i.value.kind(),
                    i.category,
                    i.confidence,
                    i.tlp.as_str(),
                    i.valid_until_ms,
                    i.description,
                    i.created_by,
                    now,
                    now
                ],
            )
            .map_err(map_err)?;
            Ok(StoredIndicator {
                id: c.last_insert_rowid(),
                value: i.value,
                category: i.category,
                confidence: i.confidence,
                tlp: i.tlp,
                valid_until_ms: i.valid_until_ms,
                description: i.description,
                created_by: i.created_by,
                created_ms: now,
                modified_ms: now,
                revoked: false,
            })
        })
        .await
    }

    async fn list_indicators(&self, include_revoked: bool) -> Result<Vec<StoredIndicator>> {
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT id, value, category, confidence, tlp, valid_until_ms, description, created_by, \
                     created_ms, modified_ms, revoked FROM indicators WHERE revoked = 0 OR ? ORDER BY id DESC",
                )
                .map_err(be)?;
            let rows = st
                .query_map([include_revoked], |r| {
                    Ok((
                        r.get::<_, Id>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, i64>(8)?,
                        r.get::<_, i64>(9)?,
                        r.get::<_, bool>(10)?,
                    ))
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, value, category, confidence, tlp, valid_until_ms, description, created_by, created_ms, modified_ms, revoked) in rows {
                let value = IndicatorValue::parse(&value)
                    .map_err(|e| StoreError::Backend(format!("indicator {id}: {e}")))?;
                out.push(StoredIndicator {
                    id,
                    value,
                    category,
                    confidence: confidence.clamp(0, 100) as u8,
                    tlp: Tlp::from_name(&tlp).unwrap_or(Tlp::Red),
                    valid_until_ms,
                    description,
                    created_by,
                    created_ms,
                    modified_ms,
                    revoked,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_indicator(&self, id: Id, now_ms: i64) -> Result<bool> {
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE indicators SET revoked = 1, modified_ms = MAX(modified_ms + 1, ?) WHERE id = ? AND revoked = 0",
                    params![now_ms, id],
                )
                .map_err(be)?;
            Ok(n == 1)
        })
        .await
    }

    async fn add_exclusion(
        &self,
        scope: &Scope,
        member_id: Id,
        cidr: &str,
        note: &str,
    ) -> Result<bool> {
        let (scope, cidr, note) = (scope.clone(), cidr.to_owned(), note.to_owned());
        self.write(move |c| {
            if select_members(c, &scope, Some(member_id))?.is_empty() {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO blocklist_exclusions (member_id, cidr, note, created_ms) VALUES (?,?,?,?) \
                 ON CONFLICT (member_id, cidr) DO UPDATE SET note = excluded.note",
                params![member_id, cidr, note, now_ms()],
            )
            .map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    async fn list_exclusions(
        &self,
        scope: &Scope,
        member_id: Id,
    ) -> Result<Option<Vec<Exclusion>>> {
        let scope = scope.clone();
        self.read(move |c| {
            if select_members(c, &scope, Some(member_id))?.is_empty() {
                return Ok(None);
            }
            let mut st = c
                .prepare("SELECT cidr, note, created_ms FROM blocklist_exclusions WHERE member_id = ? ORDER BY cidr")
                .map_err(be)?;
            let v = st
                .query_map([member_id], |r| {
                    Ok(Exclusion {
                        cidr: r.get(0)?,
                        note: r.get(1)?,
                        created_ms: r.get(2)?,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(Some(v))
        })
        .await
    }

    async fn delete_exclusion(&self, scope: &Scope, member_id: Id, cidr: &str) -> Result<bool> {
        let (scope, cidr) = (scope.clone(), cidr.to_owned());
        self.write(move |c| {
            if select_members(c, &scope, Some(member_id))?.is_empty() {
                return Ok(false);
            }
            let n = c
                .execute(
                    "DELETE FROM blocklist_exclusions WHERE member_id = ? AND cidr = ?",
                    params![member_id, cidr],
                )
                .map_err(be)?;
            Ok(n == 1)
        })
        .await
    }

    async fn widespread_sources(
        &self,
        since_day: i64,
        min_members: u32,
        limit: u32,
    ) -> Result<Vec<SourceSighting>> {
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT src_ip, COUNT(DISTINCT member_id) AS m, SUM(events), MIN(day), MAX(day) \
                     FROM rollup_src WHERE day >= ? GROUP BY src_ip HAVING m >= ? \
                     ORDER BY m DESC, SUM(events) DESC, src_ip LIMIT ?",
                )
                .map_err(be)?;
            let rows = st
                .query_map(params![since_day, min_members.max(1), limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(rows
                .into_iter()
                .filter_map(|(ip, m, e, f, l)| {
                    let ip: IpAddr = ip.parse().ok()?;
                    (!watchhouse_intel::is_non_internet(ip)).then_some(SourceSighting {
                        ip,
                        members: m as u32,
                        events: e.max(0) as u64,
                        first_day: f,
                        last_day: l,
                    })
                })
                .collect())
        })
        .await
    }

    async fn source_reach(
        &self,
        member_id: Id,
        sources: &[IpAddr],
        since_day: i64,
    ) -> Result<HashMap<IpAddr, u32>> {
        if sources.is_empty() {
            return Ok(HashMap::new());
        }
        // No index serves this on SQLite (it would slow every embedded hub's ingest, and an
        // embedded hub counts campaigns in memory and never asks): the query scans `rollup_src`.
        let list =
            serde_json::to_string(&sources.iter().map(IpAddr::to_string).collect::<Vec<_>>())
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT src_ip, COUNT(DISTINCT member_id) FROM rollup_src \
                     WHERE src_ip IN (SELECT value FROM json_each(?1)) AND day >= ?2 AND member_id <> ?3 \
                     GROUP BY src_ip",
                )
                .map_err(be)?;
            let rows = st
                .query_map(params![list, since_day, member_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(rows
                .into_iter()
                .filter_map(|(ip, n)| Some((ip.parse().ok()?, n.clamp(0, u32::MAX as i64) as u32)))
                .collect())
        })
        .await
    }

    async fn list_feed_configs(&self) -> Result<Vec<(String, String)>> {
        self.read(move |c| {
            let mut st = c
                .prepare("SELECT name, config FROM feed_configs ORDER BY name")
                .map_err(be)?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn add_feed_config(&self, name: &str, config_json: &str, created_by: &str) -> Result<()> {
        let (n, j, by) = (
            name.to_owned(),
            config_json.to_owned(),
            created_by.to_owned(),
        );
        self.write(move |c| {
            c.execute(
                "INSERT INTO feed_configs (name, config, created_by, created_ms) VALUES (?,?,?,?)",
                params![n, j, by, now_ms()],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn delete_feed_config(&self, name: &str) -> Result<bool> {
        let n = name.to_owned();
        self.write(move |c| {
            let k = c
                .execute("DELETE FROM feed_configs WHERE name = ?", [n])
                .map_err(be)?;
            Ok(k == 1)
        })
        .await
    }

    async fn create_api_token(&self, user_id: Id, token_hash: &str, name: &str) -> Result<()> {
        let (t, n) = (token_hash.to_owned(), name.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_tokens (token_hash, user_id, name, created_ms) VALUES (?,?,?,?)",
                params![t, user_id, n, now_ms()],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn user_for_api_token(&self, token_hash: &str) -> Result<Option<User>> {
        let t = token_hash.to_owned();
        self.read(move |c| {
            let uid: Option<Id> = c
                .query_row(
                    "SELECT t.user_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
                     WHERE t.token_hash = ? AND u.disabled = 0",
                    [t],
                    |r| r.get(0),
                )
                .optional()
                .map_err(be)?;
            match uid {
                Some(id) => Ok(load_user(c, id).map_err(be)?.map(|(u, _)| u)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn add_taxii_object(
        &self,
        collection: &str,
        o: TaxiiObject,
        user_id: Id,
    ) -> Result<bool> {
        let col = collection.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "INSERT INTO taxii_objects (collection, id, version, added_ms, added_by, json) VALUES (?,?,?,?,?,?) \
                     ON CONFLICT (collection, id, version) DO NOTHING",
                    params![col, o.id, o.version, o.added_ms, user_id, o.json],
                )
                .map_err(be)?;
            Ok(n == 1)
        })
        .await
    }

    async fn taxii_objects(
        &self,
        collection: &str,
        after_ms: i64,
        limit: u32,
    ) -> Result<Vec<TaxiiObject>> {
        let col = collection.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT id, version, added_ms, json FROM taxii_objects WHERE collection = ? AND added_ms > ? \
                     ORDER BY added_ms, id, version LIMIT ?",
                )
                .map_err(be)?;
            let v = st
                .query_map(params![col, after_ms, limit], |r| {
                    Ok(TaxiiObject {
                        id: r.get(0)?,
                        version: r.get(1)?,
                        added_ms: r.get(2)?,
                        json: r.get(3)?,
                    })
                })
                .map_err(be)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(be)?;
            Ok(v)
        })
        .await
    }

    async fn put_taxii_status(&self, id: &str, user_id: Id, json: &str) -> Result<()> {
        let (id, json) = (id.to_owned(), json.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO taxii_status (id, user_id, json, created_ms) VALUES (?,?,?,?) \
                 ON CONFLICT (id) DO UPDATE SET json = excluded.json",
                params![id, user_id, json, now_ms()],
            )
            .map_err(be)?;
            Ok(())
        })
        .await
    }

    async fn taxii_status(&self, id: &str, user_id: Id) -> Result<Option<String>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT json FROM taxii_status WHERE id = ? AND user_id = ?",
                params![id, user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(be)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ip_text_is_the_standard_text() {
        // Every octet value in every position, plus a spread of whole addresses.
        for o in 0..=255u8 {
            for pos in 0..4 {
                let mut b = [1u8, 22, 203, 9];
                b[pos] = o;
                let ip = IpAddr::V4(Ipv4Addr::from(b));
                assert_eq!(ip_text(&ip), ip.to_string());
            }
        }
        let mut x: u32 = 0x9E37_79B9;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let ip = IpAddr::V4(Ipv4Addr::from(x));
            assert_eq!(ip_text(&ip), ip.to_string());
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_text(&v6), "2001:db8::1");
    }

    /// Pages reach the database file only by a checkpoint. The writer's own (backstop) one
    /// runs at 64 MiB of WAL; 2 MB written stays far below that, so the file growing shows
    /// the checkpointer thread at work.
    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wh.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        store
            .write(|c| {
                c.execute_batch(
                    "CREATE TABLE filler (b BLOB);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                     INSERT INTO filler SELECT randomblob(4000) FROM n;",
                )
                .map_err(be)
            })
            .await
            .unwrap();
        let wal = std::fs::metadata(path.with_extension("db-wal"))
            .unwrap()
            .len();
        assert!(
            wal > 2_000_000,
            "the rows went to the WAL first ({wal} bytes)"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = std::fs::metadata(&path).unwrap().len();
            if now >= before + 2_000_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 10 s: database file {before} -> {now} bytes"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(store); // stops and joins the thread
    }

    /// A new database gets 16 KiB pages; one created with SQLite's default 4 KiB (every
    /// database before this setting) keeps them and still opens, migrates and stores, and the
    /// WAL bound stays 64 MiB whichever the page size.
    #[tokio::test]
    async fn new_databases_get_large_pages_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let page = |c: &Connection| -> (u32, u32) {
            (
                c.pragma_query_value(None, "page_size", |r| r.get(0))
                    .unwrap(),
                c.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                    .unwrap(),
            )
        };
        let new = SqliteStore::open(&dir.path().join("new.db")).await.unwrap();
        let got = new.read(move |c| Ok(page(c))).await.unwrap();
        assert_eq!(got, (16384, 4096));
        new.create_force("F", "R").await.unwrap();

        let old_path = dir.path().join("old.db");
        {
            let c = Connection::open(&old_path).unwrap();
            c.execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE before (x);",
            )
            .unwrap();
        }
        let old = SqliteStore::open(&old_path).await.unwrap();
        let got = old.read(move |c| Ok(page(c))).await.unwrap();
        assert_eq!(got, (4096, 16384));
        let f = old.create_force("F", "R").await.unwrap();
        assert_eq!(old.list_forces(&Scope::All).await.unwrap()[0].id, f.id);
    }
}
