//! The scale-out backend: PostgreSQL, shared by every hub process.
//!
//! A connection pool (deadpool) over tokio-postgres. Raw events go in as compressed blocks, one
//! row per batch and day ([`crate::block`]), into day partitions created on demand; the
//! per-source rollup likewise, a block per batch and day ([`crate::srcblock`]), which the
//! campaign count tails into memory (`Reach`); the daily and port rollups are upserted once
//! per distinct key per batch, in key order so two workers never deadlock on them.
//! Migrations are embedded, applied in order at open under an advisory lock, so several hub
//! processes may start at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};
use watchhouse_detect::{AlertKind, Observation, ObservedLabel, Severity};
use watchhouse_event::{Action, Direction, Event, Format, IpProto};
use watchhouse_intel::{IndicatorValue, Tlp};
use watchhouse_proto::Batch;

use crate::*;

/// Migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_source_reach.sql"),
    include_str!("../migrations/postgres/0003_rollup_fillfactor.sql"),
    include_str!("../migrations/postgres/0004_event_blocks.sql"),
    include_str!("../migrations/postgres/0005_source_blocks.sql"),
];

/// The schema version that moved raw events into blocks; the rows of the old table are
/// converted right after it (see [`convert_event_rows`]).
const V_EVENT_BLOCKS: usize = 4;

/// The schema version that moved the per-source rollup into blocks; the rows of the old table
/// are converted right after it (see [`convert_rollup_src`]).
const V_SOURCE_BLOCKS: usize = 5;

/// Sources the campaign count keeps in memory per process ([`Reach`]); past this, sources not
/// yet known are left out (counted and logged) until the window moves on.
const REACH_MAX_SOURCES: usize = 4_000_000;

/// Days the campaign count holds below the latest day it was asked about, at most (plus one).
const REACH_DAYS: i64 = 31;

/// Advisory lock key serialising migrations and partition creation across hub processes.
const LOCK_MIGRATE: i64 = 0x5741_5443_4801;
const LOCK_PARTITION: i64 = 0x5741_5443_4802;

/// Event ids are `block * EVENT_ID_BLOCK + index in batch`.
const EVENT_ID_BLOCK: i64 = 32_768;
const _: () = assert!(watchhouse_proto::MAX_BATCH_EVENTS as i64 <= EVENT_ID_BLOCK);

const DAY_MS: i64 = 86_400_000;

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: Pool,
    /// Day partitions known to exist.
    partitions: Mutex<HashSet<i64>>,
    /// The campaign count's view of every member's sources, brought up to date from
    /// `rollup_src_blocks` at each [`Store::source_reach`].
    reach: tokio::sync::Mutex<Reach>,
}

/// Which members saw which sources lately, read from `rollup_src_blocks` and kept in memory
/// so that counting a batch's sources costs PostgreSQL one small query for the blocks
/// committed since the last count, not a probe per source. Exact: a block is read once its
/// transaction is visible, whatever order transactions commit in (see [`Reach::tail`]).
#[derive(Default)]
struct Reach {
    /// The first day held; `None` until the first read.
    from_day: Option<i64>,
    /// The oldest transaction still running at the last read: every block written by an older
    /// one has been read.
    xmin: i64,
    /// Blocks read whose transaction is not older than `xmin` (they are listed again).
    read: HashMap<i64, i64>,
    /// Per source, each member that saw it and the last day it did.
    seen: HashMap<IpAddr, Vec<(Id, i64)>>,
    /// New sources left out because `seen` was full, since the last reload.
    left_out: u64,
}

impl Reach {
    /// Brings the memory up to date, holding every day from `want_from` on. Under one
    /// snapshot: the blocks of days not held yet (every day from `want_from` on, the first
    /// time), then the blocks of days held that transactions from the previous snapshot's
    /// `xmin` on wrote, minus those already read. A transaction still running at a snapshot
    /// has an id at least its `xmin`, so its block is found by a later call once it commits.
    async fn tail(&mut self, c: &mut Object, want_from: i64) -> Result<()> {
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(be)?;
        let xmin: i64 = tx
            .query_one(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
                &[],
            )
            .await
            .map_err(be)?
            .get(0);
        let mut read_now: Vec<(i64, i64)> = Vec::new();
        let (lo, hi) = match self.from_day {
            None => (want_from, i64::MAX),
            Some(f) => (want_from.min(f), f),
        };
        if lo < hi {
            let portal = tx
                .bind(
                    "SELECT seq, xid::text::bigint, member_id, day, data FROM rollup_src_blocks \
                     WHERE day >= $1 AND day < $2",
                    &[&lo, &hi],
                )
                .await
                .map_err(be)?;
            self.read_portal(&tx, &portal, 2, &mut read_now).await?;
        }
        if let Some(f) = self.from_day {
            let listed = tx
                .query(
                    "SELECT seq, xid::text::bigint FROM rollup_src_blocks WHERE xid >= $1::text::xid8",
                    &[&self.xmin.to_string()],
                )
                .await
                .map_err(be)?;
            let new: Vec<i64> = listed
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .filter(|s| !self.read.contains_key(s))
                .collect();
            // Days below `f` were read whole above.
            if !new.is_empty() {
                let portal = tx
                    .bind(
                        "SELECT member_id, day, data FROM rollup_src_blocks WHERE seq = ANY($1) AND day >= $2",
                        &[&new, &f],
                    )
                    .await
                    .map_err(be)?;
                self.read_portal(&tx, &portal, 0, &mut Vec::new()).await?;
            }
            read_now.extend(listed.iter().map(|r| (r.get(0), r.get(1))));
        }
        tx.commit().await.map_err(be)?;
        self.read.extend(read_now);
        self.read.retain(|_, x| *x >= xmin);
        self.xmin = xmin;
        self.from_day = Some(lo.min(hi));
        Ok(())
    }

    /// Adds the blocks a portal yields (columns from `at`: member, day, data; before them, if
    /// `at` is 2, the block's seq and transaction, pushed to `read`).
    async fn read_portal(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        portal: &tokio_postgres::Portal,
        at: usize,
        read: &mut Vec<(i64, i64)>,
    ) -> Result<()> {
        loop {
            let rs = tx.query_portal(portal, 256).await.map_err(be)?;
            if rs.is_empty() {
                return Ok(());
            }
            for r in &rs {
                if at == 2 {
                    read.push((r.get(0), r.get(1)));
                }
                let (member, day): (Id, i64) = (r.get(at), r.get(at + 1));
                let (seen, left_out) = (&mut self.seen, &mut self.left_out);
                crate::srcblock::for_each(r.get(at + 2), |ip, _| {
                    let full = seen.len() >= REACH_MAX_SOURCES;
                    match seen.get_mut(&ip) {
                        Some(v) => match v.iter_mut().find(|(m, _)| *m == member) {
                            Some((_, d)) => *d = (*d).max(day),
                            None => v.push((member, day)),
                        },
                        None if full => *left_out += 1,
                        None => {
                            seen.insert(ip, vec![(member, day)]);
                        }
                    }
                })
                .map_err(StoreError::Backend)?;
            }
        }
    }

    /// Forgets days before `day`.
    fn prune(&mut self, day: i64) {
        self.seen.retain(|_, v| {
            v.retain(|(_, d)| *d >= day);
            !v.is_empty()
        });
        self.from_day = Some(day);
    }
}

/// Maps constraint violations to the same errors the SQLite backend gives.
fn map_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict(db.message().to_owned());
        }
        if *code == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::NotFound("a referenced row does not exist".into());
        }
        if *code == SqlState::NOT_NULL_VIOLATION || *code == SqlState::CHECK_VIOLATION {
            return StoreError::Invalid(db.message().to_owned());
        }
        return StoreError::Backend(format!("{}: {}", code.code(), db.message()));
    }
    be(e)
}

/// Positional parameters for SQL built at run time.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    /// Adds a value and returns its placeholder (`$n`).
    fn push<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// SQL condition restricting `members m` to a scope; its parameters go into `p`.
fn scope_sql(scope: &Scope, p: &mut Params) -> String {
    match scope {
        Scope::All => "TRUE".into(),
        Scope::Force(f) => format!("m.force_id = {}", p.push(*f)),
        Scope::Region(r) => format!(
            "m.force_id IN (SELECT id FROM forces WHERE region = {})",
            p.push(r.clone())
        ),
        Scope::Members(ids) => format!("m.id = ANY({})", p.push(ids.clone())),
    }
}

fn bad(what: &str) -> StoreError {
    StoreError::Backend(format!("bad {what} in database"))
}

const EVENT_COLS: &str =
    "e.id, e.member_id, e.collector_id, e.time_ms, e.last_ms, e.action, e.protocol, \
     e.src_ip, e.src_port, e.dst_ip, e.dst_port, e.direction, e.in_iface, e.out_iface, e.rule, \
     e.device, e.format, e.bytes, e.packets, e.count, e.raw, e.nat, e.product, e.host, e.url";

fn row_event(r: &Row) -> Result<StoredEvent> {
    let action: &str = r.get(5);
    let dir: &str = r.get(11);
    let fmt: &str = r.get(16);
    Ok(StoredEvent {
        id: r.get(0),
        member_id: r.get(1),
        collector_id: r.get(2),
        event: Event {
            time_ms: r.get(3),
            last_ms: r.get(4),
            action: Action::from_name(action).ok_or_else(|| bad("action"))?,
            protocol: IpProto(r.get::<_, i16>(6) as u8),
            src_ip: r.get(7),
            src_port: r.get::<_, Option<i32>>(8).map(|p| p as u16),
            dst_ip: r.get(9),
            dst_port: r.get::<_, Option<i32>>(10).map(|p| p as u16),
            direction: Direction::from_name(dir).ok_or_else(|| bad("direction"))?,
            in_iface: r.get(12),
            out_iface: r.get(13),
            rule: r.get(14),
            device: r.get(15),
            format: Format::from_name(fmt).ok_or_else(|| bad("format"))?,
            bytes: r.get::<_, Option<i64>>(17).map(|b| b as u64),
            packets: r.get::<_, Option<i64>>(18).map(|b| b as u64),
            count: r.get::<_, i64>(19) as u32,
            raw: r.get(20),
            nat: r
                .get::<_, Option<String>>(21)
                .and_then(|n| serde_json::from_str(&n).ok()),
            product: r.get(22),
            host: r.get(23),
            url: r.get(24),
        },
    })
}

const ALERT_COLS: &str =
    "a.id, a.member_id, m.name, a.kind, a.severity, a.subject_ip, a.lists, a.ports, \
     a.event_count, a.first_seen_ms, a.last_seen_ms, a.status, a.labels, a.feedback";

fn row_alert(r: &Row) -> Result<Alert> {
    let feedback: Option<&str> = r.get(13);
    Ok(Alert {
        id: r.get(0),
        member_id: r.get(1),
        member_name: r.get(2),
        kind: AlertKind::from_name(r.get(3)).ok_or_else(|| bad("kind"))?,
        severity: Severity::from_name(r.get(4)).ok_or_else(|| bad("severity"))?,
        subject_ip: r.get::<_, &str>(5).parse().map_err(|_| bad("address"))?,
        lists: serde_json::from_str(r.get(6)).map_err(|_| bad("lists"))?,
        ports: serde_json::from_str(r.get(7)).map_err(|_| bad("ports"))?,
        event_count: r.get::<_, i64>(8) as u64,
        first_seen_ms: r.get(9),
        last_seen_ms: r.get(10),
        status: AlertStatus::from_name(r.get(11)).ok_or_else(|| bad("status"))?,
        labels: serde_json::from_str(r.get(12)).map_err(|_| bad("labels"))?,
        feedback: feedback.and_then(Feedback::from_name),
    })
}

fn rows<T>(rs: Vec<Row>, f: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rs.iter().map(f).collect()
}

async fn load_user<C: GenericClient>(c: &C, id: Id) -> Result<Option<(User, String)>> {
    let Some(r) = c
        .query_opt(
            "SELECT id, email, name, role, force_id, region, password_hash, max_tlp FROM users WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(be)?
    else {
        return Ok(None);
    };
    let member_ids: Vec<Id> = c
        .query(
            "SELECT member_id FROM user_members WHERE user_id = $1 ORDER BY member_id",
            &[&id],
        )
        .await
        .map_err(be)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let role: &str = r.get(3);
    let max_tlp: Option<&str> = r.get(7);
    Ok(Some((
        User {
            id: r.get(0),
            email: r.get(1),
            name: r.get(2),
            role: Role::from_name(role).unwrap_or(Role::MemberViewer),
            force_id: r.get(4),
            region: r.get(5),
            member_ids,
            max_tlp: max_tlp.and_then(Tlp::from_name),
        },
        r.get(6),
    )))
}

const COLLECTOR_COLS: &str =
    "c.id, c.member_id, c.name, c.revoked_ms, c.last_seen_ms, c.version, c.stats";

fn row_collector(r: &Row) -> Result<Collector> {
    let stats: Option<String> = r.get(6);
    Ok(Collector {
        id: r.get(0),
        member_id: r.get(1),
        name: r.get(2),
        revoked: r.get::<_, Option<i64>>(3).is_some(),
        last_seen_ms: r.get(4),
        version: r.get(5),
        stats: stats.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

async fn member_visible<C: GenericClient>(c: &C, scope: &Scope, member_id: Id) -> Result<bool> {
    let mut p = Params::default();
    let id = p.push(member_id);
    let cond = scope_sql(scope, &mut p);
    let sql = format!("SELECT 1 FROM members m WHERE m.id = {id} AND {cond}");
    Ok(c.query_opt(&sql, &p.refs()).await.map_err(be)?.is_some())
}

async fn select_members<C: GenericClient>(
    c: &C,
    scope: &Scope,
    id: Option<Id>,
) -> Result<Vec<Member>> {
    let mut p = Params::default();
    let cond = scope_sql(scope, &mut p);
    let mut sql = format!(
        "SELECT m.id, m.force_id, m.name, m.networks, m.send_outbound FROM members m WHERE {cond}"
    );
    if let Some(id) = id {
        sql.push_str(&format!(" AND m.id = {}", p.push(id)));
    }
    sql.push_str(" ORDER BY m.name");
    let rs = c.query(&sql, &p.refs()).await.map_err(be)?;
    rows(rs, |r| {
        Ok(Member {
            id: r.get(0),
            force_id: r.get(1),
            name: r.get(2),
            networks: serde_json::from_str(r.get(3)).unwrap_or_default(),
            send_outbound: r.get(4),
        })
    })
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`), applies migrations.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let mut cfg = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::Invalid(format!(
                "`{}` is not a PostgreSQL URL ({e}); use postgres://USER@HOST:PORT/DATABASE",
                crate::redact_url(url)
            ))
        })?;
        // No JIT: the hub's statements are short, and a batch-sized array pushes their cost
        // estimates past `jit_above_cost`, where compiling took 170 ms for a 7 ms query.
        // Options given in the URL come first and still apply.
        let options = match cfg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c jit=off"),
            _ => "-c jit=off".to_owned(),
        };
        cfg.options(&options);
        if cfg.get_application_name().is_none() {
            cfg.application_name("watchhouse");
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(16)
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
        let store = PostgresStore {
            pool,
            partitions: Mutex::new(HashSet::new()),
            reach: tokio::sync::Mutex::new(Reach::default()),
        };
        store.migrate().await.map_err(|e| match e {
            StoreError::Backend(m) => StoreError::Backend(format!(
                "cannot prepare the PostgreSQL database at {}: {m}. Is PostgreSQL running and the database created?",
                crate::redact_url(url)
            )),
            e => e,
        })?;
        Ok(store)
    }

    async fn conn(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("PostgreSQL connection: {e}")))
    }

    async fn migrate(&self) -> Result<()> {
        let mut c = self.conn().await?;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .await
        .or_else(|e| {
            // Two processes creating it at once: the loser sees a unique violation.
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(be)?;
        let tx = c.transaction().await.map_err(be)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
            .await
            .map_err(be)?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await
            .map_err(be)?
            .get(0);
        if current > MIGRATIONS.len() as i64 {
            return Err(StoreError::Invalid(format!(
                "the database schema is version {current}, newer than this build knows ({}): upgrade Watchhouse",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql).await.map_err(be)?;
            if i + 1 == V_EVENT_BLOCKS {
                let moved = convert_event_rows(&tx).await?;
                if moved > 0 {
                    tracing::info!(events = moved, "raw events moved into compressed blocks");
                }
            }
            if i + 1 == V_SOURCE_BLOCKS {
                let moved = convert_rollup_src(&tx).await?;
                if moved > 0 {
                    tracing::info!(rows = moved, "per-source rollup rows moved into blocks");
                }
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&(i as i64 + 1), &now_ms()],
            )
            .await
            .map_err(be)?;
        }
        tx.commit().await.map_err(be)?;
        Ok(())
    }

    /// Makes sure a day partition exists for each day.
    async fn ensure_partitions(&self, days: &BTreeSet<i64>) -> Result<()> {
        let missing: Vec<i64> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            days.iter()
                .copied()
                .filter(|d| !known.contains(d))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_PARTITION])
            .await
            .map_err(be)?;
        for d in &missing {
            create_partition(&tx, *d).await?;
        }
        tx.commit().await.map_err(be)?;
        self.partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(missing);
        Ok(())
    }

    /// The event partitions that exist, by day.
    pub async fn partition_days(&self) -> Result<Vec<i64>> {
        let c = self.conn().await?;
        let rs = c
            .query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'event_blocks' \
                 AND p.relnamespace = to_regnamespace(current_schema())::oid",
                &[],
            )
            .await
            .map_err(be)?;
        let mut days: Vec<i64> = rs
            .iter()
            .filter_map(|r| {
                r.get::<_, &str>(0)
                    .strip_prefix("event_blocks_d")?
                    .parse()
                    .ok()
            })
            .collect();
        days.sort_unstable();
        Ok(days)
    }
}

/// A batch's events as blocks, one per day (a batch rarely spans midnight). Event ids are
/// `first_id` + the event's index in the batch, as the evidence links expect.
fn event_blocks(events: &[Event], first_id: i64) -> Result<Vec<(i64, block::Block)>> {
    let mut by_day: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        by_day.entry(day_of(e.time_ms)).or_default().push(i);
    }
    let mut out = Vec::with_capacity(by_day.len());
    for (day, ixs) in by_day {
        let items = ixs.iter().map(|&i| (first_id + i as i64, &events[i]));
        if let Some(b) = block::encode(items)? {
            out.push((day, b));
        }
    }
    Ok(out)
}

async fn insert_blocks(
    tx: &tokio_postgres::Transaction<'_>,
    member_id: Id,
    collector_id: Id,
    blocks: &[(i64, block::Block)],
) -> Result<()> {
    for (day, b) in blocks {
        tx.execute(
            "INSERT INTO event_blocks (member_id, day, first_id, last_id, collector_id, min_time_ms, \
             max_time_ms, events, data) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            &[
                &member_id,
                day,
                &b.first_id,
                &b.last_id,
                &collector_id,
                &b.min_time_ms,
                &b.max_time_ms,
                &b.events,
                &b.data,
            ],
        )
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Creates day `d`'s partition of the event blocks (the caller holds the partition lock). The
/// data is compressed already: stored out of line as it is, without PostgreSQL trying again.
async fn create_partition(tx: &tokio_postgres::Transaction<'_>, d: i64) -> Result<()> {
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS event_blocks_d{d} PARTITION OF event_blocks FOR VALUES FROM ({d}) TO ({}); \
         ALTER TABLE event_blocks_d{d} ALTER COLUMN data SET STORAGE EXTERNAL",
        d + 1
    ))
    .await
    .map_err(be)
}

/// Moves the rows of `events` (raw events, one row each, before schema version 4) into
/// blocks, a day partition at a time, and drops that table. Runs inside the migration's
/// transaction, so a database is either wholly converted or untouched. The blocks are the ones
/// ingest would have written: one per batch (its id block) and day. Returns the events moved.
async fn convert_event_rows(tx: &tokio_postgres::Transaction<'_>) -> Result<u64> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('events') IS NOT NULL", &[])
        .await
        .map_err(be)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let parts: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY 1",
            &[],
        )
        .await
        .map_err(be)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut moved = 0u64;
    for part in parts {
        let day: i64 = part
            .strip_prefix("events_d")
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unexpected partition `{part}` of the old events table: move or drop it, then start again"
                ))
            })?;
        create_partition(tx, day).await?;
        let portal = tx
            .bind(
                &format!(
                    "SELECT {EVENT_COLS} FROM {part} e ORDER BY e.member_id, e.collector_id, e.id"
                ),
                &[],
            )
            .await
            .map_err(be)?;
        let mut group: Vec<StoredEvent> = Vec::new();
        loop {
            let rs = tx.query_portal(&portal, 10_000).await.map_err(be)?;
            if rs.is_empty() {
                break;
            }
            for r in &rs {
                let e = row_event(r)?;
                let key = |e: &StoredEvent| {
                    (e.member_id, e.collector_id, e.id.div_euclid(EVENT_ID_BLOCK))
                };
                if group.first().is_some_and(|g| key(g) != key(&e)) {
                    moved += flush_rows(tx, day, &mut group).await?;
                }
                group.push(e);
            }
        }
        moved += flush_rows(tx, day, &mut group).await?;
    }
    tx.batch_execute("DROP TABLE events").await.map_err(be)?;
    Ok(moved)
}

/// Moves the rows of `rollup_src` (a row per member, day and source, before schema version 5)
/// into `rollup_src_blocks`, a block per member and day (of at most 100,000 sources), and
/// drops that table. Inside the migration's transaction, like [`convert_event_rows`]. Returns
/// the rows moved.
async fn convert_rollup_src(tx: &tokio_postgres::Transaction<'_>) -> Result<u64> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('rollup_src') IS NOT NULL", &[])
        .await
        .map_err(be)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let portal = tx
        .bind(
            "SELECT member_id, day, src_ip, events FROM rollup_src ORDER BY member_id, day, src_ip",
            &[],
        )
        .await
        .map_err(be)?;
    let mut group: Vec<(IpAddr, i64)> = Vec::new();
    let mut key = (0, 0);
    let mut moved = 0u64;
    loop {
        let rs = tx.query_portal(&portal, 10_000).await.map_err(be)?;
        if rs.is_empty() {
            break;
        }
        for r in &rs {
            let k: (Id, i64) = (r.get(0), r.get(1));
            if !group.is_empty() && (k != key || group.len() >= 100_000) {
                moved += flush_src_rows(tx, key, &mut group).await?;
            }
            key = k;
            group.push((r.get(2), r.get(3)));
        }
    }
    moved += flush_src_rows(tx, key, &mut group).await?;
    // An open portal would keep the table in use.
    drop(portal);
    tx.batch_execute("DROP TABLE rollup_src")
        .await
        .map_err(be)?;
    Ok(moved)
}

async fn flush_src_rows(
    tx: &tokio_postgres::Transaction<'_>,
    (member_id, day): (Id, i64),
    group: &mut Vec<(IpAddr, i64)>,
) -> Result<u64> {
    if group.is_empty() {
        return Ok(0);
    }
    let data = crate::srcblock::encode(group.iter().map(|(ip, n)| (ip, n)));
    tx.execute(
        "INSERT INTO rollup_src_blocks (member_id, day, data) VALUES ($1, $2, $3)",
        &[&member_id, &day, &data],
    )
    .await
    .map_err(be)?;
    let n = group.len() as u64;
    group.clear();
    Ok(n)
}

/// Stores one batch's converted rows of one day as a block and empties `group`.
async fn flush_rows(
    tx: &tokio_postgres::Transaction<'_>,
    day: i64,
    group: &mut Vec<StoredEvent>,
) -> Result<u64> {
    let Some(g) = group.first() else {
        return Ok(0);
    };
    let (member_id, collector_id) = (g.member_id, g.collector_id);
    if let Some(b) = block::encode(group.iter().map(|e| (e.id, &e.event)))? {
        insert_blocks(tx, member_id, collector_id, &[(day, b)]).await?;
    }
    let n = group.len() as u64;
    group.clear();
    Ok(n)
}

async fn upsert_rollups(
    tx: &tokio_postgres::Transaction<'_>,
    member_id: Id,
    r: &Rollups,
) -> Result<()> {
    if !r.daily.is_empty() {
        let days: Vec<i64> = r.daily.keys().map(|k| k.0).collect();
        let allowed: Vec<bool> = r.daily.keys().map(|k| k.1).collect();
        let n: Vec<i64> = r.daily.values().copied().collect();
        tx.execute(
            "INSERT INTO rollup_daily (member_id, day, allowed, events) \
             SELECT $1, d, a, n FROM unnest($2::bigint[], $3::boolean[], $4::bigint[]) AS t(d, a, n) \
             ON CONFLICT (member_id, day, allowed) DO UPDATE SET events = rollup_daily.events + excluded.events",
            &[&member_id, &days, &allowed, &n],
        )
        .await
        .map_err(map_err)?;
    }
    if !r.src.is_empty() {
        // A block per day: the keys are in (day, source) order.
        let mut days: Vec<i64> = Vec::new();
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        let mut rest = &r.src.iter().collect::<Vec<_>>()[..];
        while let Some(((day, _), _)) = rest.first() {
            let n = rest.iter().take_while(|((d, _), _)| d == day).count();
            let (this, more) = rest.split_at(n);
            days.push(*day);
            blocks.push(crate::srcblock::encode(
                this.iter().map(|((_, ip), n)| (ip, *n)),
            ));
            rest = more;
        }
        tx.execute(
            "INSERT INTO rollup_src_blocks (member_id, day, data) \
             SELECT $1, d, b FROM unnest($2::bigint[], $3::bytea[]) AS t(d, b)",
            &[&member_id, &days, &blocks],
        )
        .await
        .map_err(map_err)?;
    }
    if !r.port.is_empty() {
        let days: Vec<i64> = r.port.keys().map(|k| k.0).collect();
        let protos: Vec<i16> = r.port.keys().map(|k| i16::from(k.1)).collect();
        let ports: Vec<i32> = r.port.keys().map(|k| i32::from(k.2)).collect();
        let n: Vec<i64> = r.port.values().copied().collect();
        tx.execute(
            "INSERT INTO rollup_port (member_id, day, protocol, dst_port, events) \
             SELECT $1, d, pr, po, n FROM unnest($2::bigint[], $3::smallint[], $4::integer[], $5::bigint[]) AS t(d, pr, po, n) \
             ON CONFLICT (member_id, day, protocol, dst_port) DO UPDATE SET events = rollup_port.events + excluded.events",
            &[&member_id, &days, &protos, &ports, &n],
        )
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Folds observations into alerts (new, or grown within the deduplication window), set-based:
/// a handful of statements per batch whatever the number of alerts ([`fold_observations`]),
/// so a worker's batch costs round trips per batch, not per alert.
#[allow(clippy::too_many_arguments)]
async fn upsert_alerts(
    tx: &tokio_postgres::Transaction<'_>,
    member_id: Id,
    events: &[Event],
    first_id: i64,
    observations: &[Observation],
    window_ms: i64,
    now: i64,
) -> Result<(Vec<AlertKind>, u64)> {
    if observations.is_empty() {
        return Ok((Vec::new(), 0));
    }
    // Held back by the member's feedback: the event is stored, the alert is not grown.
    let subjects: Vec<String> = observations
        .iter()
        .map(|o| o.subject_ip.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut until: HashMap<(String, String), i64> = HashMap::new();
    for r in tx
        .query(
            "SELECT kind, subject_ip, until_ms FROM suppressions WHERE member_id = $1 AND subject_ip = ANY($2)",
            &[&member_id, &subjects],
        )
        .await
        .map_err(be)?
    {
        until.insert((r.get(0), r.get(1)), r.get(2));
    }
    let mut live = Vec::with_capacity(observations.len());
    for o in observations {
        let e = events
            .get(o.event_index)
            .ok_or_else(|| StoreError::Invalid("observation refers to no event".into()))?;
        let held = until
            .get(&(o.kind.as_str().to_owned(), o.subject_ip.to_string()))
            .is_some_and(|u| e.time_ms < *u);
        if !held {
            live.push(o);
        }
    }
    let deltas = fold_observations(events, live)?;
    if deltas.is_empty() {
        return Ok((Vec::new(), 0));
    }

    // Open alerts these keys may grow, locked in id order (two workers never deadlock here).
    let keys: Vec<&str> = deltas.iter().map(|d| d.first.dedup_key.as_str()).collect();
    let oldest = deltas.iter().map(|d| d.first_ms).min().unwrap_or(0) - window_ms;
    let mut open: HashMap<String, (Id, i64, String, String, String)> = HashMap::new();
    for r in tx
        .query(
            "SELECT id, dedup_key, last_seen_ms, ports, lists, labels FROM alerts WHERE member_id = $1 \
             AND dedup_key = ANY($2) AND status != 'resolved' AND last_seen_ms >= $3 ORDER BY id FOR UPDATE",
            &[&member_id, &keys, &oldest],
        )
        .await
        .map_err(be)?
    {
        let key: String = r.get(1);
        let last: i64 = r.get(2);
        if open.get(&key).is_none_or(|o| last > o.1) {
            open.insert(key, (r.get(0), last, r.get(3), r.get(4), r.get(5)));
        }
    }

    let (mut created, mut updated) = (Vec::new(), 0u64);
    // Grown alerts, one UPDATE; new alerts, one INSERT.
    let mut up = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut new_rows: Vec<usize> = Vec::new();
    let mut alert_of: Vec<Id> = vec![0; deltas.len()];
    for (i, d) in deltas.iter().enumerate() {
        match open
            .get(d.first.dedup_key.as_str())
            .filter(|o| o.1 >= d.first_ms - window_ms)
        {
            Some((id, _, ports, lists, labels)) => {
                let mut labels: Vec<ObservedLabel> =
                    serde_json::from_str(labels).unwrap_or_default();
                watchhouse_detect::merge_labels(&mut labels, &d.labels);
                let mut ports: BTreeSet<u16> = serde_json::from_str(ports).unwrap_or_default();
                for p in &d.ports {
                    if ports.len() < MAX_ALERT_PORTS {
                        ports.insert(*p);
                    }
                }
                let mut lists: BTreeSet<String> = serde_json::from_str(lists).unwrap_or_default();
                lists.extend(d.lists.iter().cloned());
                up.0.push(*id);
                up.1.push(d.events);
                up.2.push(d.last_ms);
                up.3.push(d.first_ms);
                up.4.push(serde_json::to_string(&ports).map_err(be)?);
                up.5.push(serde_json::to_string(&lists).map_err(be)?);
                up.6.push(serde_json::to_string(&labels).map_err(be)?);
                alert_of[i] = *id;
                updated += d.observations;
            }
            None => {
                new_rows.push(i);
                created.push(d.first.kind);
                updated += d.observations - 1;
            }
        }
    }
    if !up.0.is_empty() {
        tx.execute(
            "UPDATE alerts a SET event_count = a.event_count + u.n, last_seen_ms = GREATEST(a.last_seen_ms, u.l), \
             first_seen_ms = LEAST(a.first_seen_ms, u.f), ports = u.p, lists = u.li, labels = u.la, updated_ms = $9 \
             FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[]) \
             AS u(id, n, l, f, p, li, la) WHERE a.member_id = $1 AND a.id = u.id",
            &[&member_id, &up.0, &up.1, &up.2, &up.3, &up.4, &up.5, &up.6, &now],
        )
        .await
        .map_err(be)?;
    }
    if !new_rows.is_empty() {
        let mut cols = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for (ord, &i) in new_rows.iter().enumerate() {
            let d = &deltas[i];
            cols.0.push(ord as i64);
            cols.1.push(d.first.kind.as_str());
            cols.2.push(d.first.severity.as_str());
            cols.3.push(d.first.dedup_key.as_str());
            cols.4.push(d.first.subject_ip.to_string());
            cols.5.push(serde_json::to_string(&d.lists).map_err(be)?);
            cols.6.push(serde_json::to_string(&d.ports).map_err(be)?);
            cols.7.push(d.events);
            cols.8.push(d.first_ms);
            cols.9.push(d.last_ms);
            cols.10.push(serde_json::to_string(&d.labels).map_err(be)?);
        }
        let rows = tx
            .query(
                "WITH v AS (SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[]) \
                 AS v(ord, kind, severity, dedup_key, subject_ip, lists, ports, n, f, l, labels)), \
                 ins AS (INSERT INTO alerts (member_id, kind, severity, dedup_key, subject_ip, lists, ports, \
                 event_count, first_seen_ms, last_seen_ms, status, created_ms, updated_ms, labels) \
                 SELECT $1, kind, severity, dedup_key, subject_ip, lists, ports, n, f, l, 'new', $13, $13, labels \
                 FROM v ORDER BY ord RETURNING id, dedup_key) SELECT id, dedup_key FROM ins",
                &[
                    &member_id, &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6,
                    &cols.7, &cols.8, &cols.9, &cols.10, &now,
                ],
            )
            .await
            .map_err(map_err)?;
        let ids: HashMap<String, Id> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
        for &i in &new_rows {
            alert_of[i] = *ids
                .get(deltas[i].first.dedup_key.as_str())
                .ok_or_else(|| StoreError::Backend("inserted alert not returned".into()))?;
        }
    }

    // Evidence: at most MAX_ALERT_EVIDENCE events per alert, one INSERT.
    let mut linked: HashMap<Id, i64> = HashMap::new();
    for r in tx
        .query(
            "SELECT alert_id, COUNT(*) FROM alert_events WHERE member_id = $1 AND alert_id = ANY($2) GROUP BY alert_id",
            &[&member_id, &alert_of],
        )
        .await
        .map_err(be)?
    {
        linked.insert(r.get(0), r.get(1));
    }
    let (mut a_ids, mut e_ids, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for (i, d) in deltas.iter().enumerate() {
        let have = linked.get(&alert_of[i]).copied().unwrap_or(0).max(0) as usize;
        for ix in d
            .event_indices
            .iter()
            .take(MAX_ALERT_EVIDENCE.saturating_sub(have))
        {
            a_ids.push(alert_of[i]);
            e_ids.push(first_id + *ix as i64);
            times.push(events[*ix].time_ms);
        }
    }
    if !a_ids.is_empty() {
        tx.execute(
            "INSERT INTO alert_events (member_id, alert_id, event_id, event_time_ms) \
             SELECT $1, a, e, t FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS u(a, e, t) ON CONFLICT DO NOTHING",
            &[&member_id, &a_ids, &e_ids, &times],
        )
        .await
        .map_err(be)?;
    }
    Ok((created, updated))
}

fn top_ports(rs: Vec<Row>) -> Vec<TopItem> {
    rs.iter()
        .map(|r| TopItem {
            key: format!(
                "{}/{}",
                IpProto(r.get::<_, i16>(0) as u8),
                r.get::<_, i32>(1)
            ),
            events: r.get::<_, i64>(2) as u64,
        })
        .collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_force(&self, name: &str, region: &str) -> Result<Force> {
        let c = self.conn().await?;
        let r = c
            .query_one(
                "INSERT INTO forces (name, region, created_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&name, &region, &now_ms()],
            )
            .await
            .map_err(map_err)?;
        Ok(Force {
            id: r.get(0),
            name: name.to_owned(),
            region: region.to_owned(),
        })
    }

    async fn list_forces(&self, scope: &Scope) -> Result<Vec<Force>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let sql = match scope {
            Scope::All => "SELECT id, name, region FROM forces ORDER BY name".to_owned(),
            Scope::Region(r) => format!(
                "SELECT id, name, region FROM forces WHERE region = {} ORDER BY name",
                p.push(r.clone())
            ),
            Scope::Force(f) => format!(
                "SELECT id, name, region FROM forces WHERE id = {}",
                p.push(*f)
            ),
            Scope::Members(_) => {
                let cond = scope_sql(scope, &mut p);
                format!(
                    "SELECT DISTINCT f.id, f.name, f.region FROM forces f JOIN members m ON m.force_id = f.id WHERE {cond} ORDER BY f.name"
                )
            }
        };
        let rs = c.query(&sql, &p.refs()).await.map_err(be)?;
        rows(rs, |r| {
            Ok(Force {
                id: r.get(0),
                name: r.get(1),
                region: r.get(2),
            })
        })
    }

    async fn create_member(
        &self,
        force_id: Id,
        name: &str,
        networks: &[String],
        send_outbound: bool,
    ) -> Result<Member> {
        let c = self.conn().await?;
        let r = c
            .query_one(
                "INSERT INTO members (force_id, name, networks, send_outbound, created_ms) VALUES ($1,$2,$3,$4,$5) RETURNING id",
                &[
                    &force_id,
                    &name,
                    &serde_json::to_string(networks).map_err(be)?,
                    &send_outbound,
                    &now_ms(),
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(Member {
            id: r.get(0),
            force_id,
            name: name.to_owned(),
            networks: networks.to_vec(),
            send_outbound,
        })
    }

    async fn list_members(&self, scope: &Scope) -> Result<Vec<Member>> {
        select_members(&**self.conn().await?, scope, None).await
    }

    async fn get_member(&self, scope: &Scope, id: Id) -> Result<Option<Member>> {
        Ok(select_members(&**self.conn().await?, scope, Some(id))
            .await?
            .into_iter()
            .next())
    }

    async fn create_user(&self, u: NewUser) -> Result<User> {
        validate_new_user(&u)?;
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        let id: Id = tx
            .query_one(
                "INSERT INTO users (email, name, password_hash, role, force_id, region, created_ms, max_tlp) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
                &[
                    &u.email.trim(),
                    &u.name,
                    &u.password_hash,
                    &u.role.as_str(),
                    &u.force_id,
                    &u.region,
                    &now_ms(),
                    &u.max_tlp.map(|t| t.as_str()),
                ],
            )
            .await
            .map_err(map_err)?
            .get(0);
        for m in &u.member_ids {
            tx.execute(
                "INSERT INTO user_members (user_id, member_id) VALUES ($1, $2)",
                &[&id, m],
            )
            .await
            .map_err(map_err)?;
        }
        let user = load_user(&*tx, id).await?.map(|(u, _)| u);
        tx.commit().await.map_err(be)?;
        user.ok_or_else(|| StoreError::Backend("user vanished".into()))
    }

    async fn set_password(&self, email: &str, password_hash: &str) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        let id = tx
            .query_opt(
                "UPDATE users SET password_hash = $1 WHERE lower(email) = lower($2) RETURNING id",
                &[&password_hash, &email],
            )
            .await
            .map_err(be)?;
        let Some(id) = id.map(|r| r.get::<_, Id>(0)) else {
            return Err(StoreError::NotFound(format!("no user with email {email}")));
        };
        // Changing a password ends every session of that user.
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
            .await
            .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(())
    }

    async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        let c = self.conn().await?;
        let id = c
            .query_opt(
                "SELECT id FROM users WHERE lower(email) = lower($1) AND NOT disabled",
                &[&email.trim()],
            )
            .await
            .map_err(be)?;
        match id {
            Some(r) => load_user(&**c, r.get(0)).await,
            None => Ok(None),
        }
    }

    async fn list_users(&self, scope: &Scope) -> Result<Vec<User>> {
        let c = self.conn().await?;
        let ids: Vec<Id> = c
            .query("SELECT id FROM users ORDER BY email", &[])
            .await
            .map_err(be)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some((u, _)) = load_user(&**c, id).await? {
                if scope.sees_user(&u) {
                    out.push(u);
                }
            }
        }
        Ok(out)
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: Id,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        let c = self.conn().await?;
        c.execute("DELETE FROM sessions WHERE expires_ms < $1", &[&now_ms])
            .await
            .map_err(be)?;
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_ms, expires_ms) VALUES ($1,$2,$3,$4,$5)",
            &[&token_hash, &user_id, &csrf, &now_ms, &expires_ms],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>> {
        let c = self.conn().await?;
        let Some(r) = c
            .query_opt(
                "SELECT s.user_id, s.csrf, s.expires_ms FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_ms > $2 AND NOT u.disabled",
                &[&token_hash, &now_ms],
            )
            .await
            .map_err(be)?
        else {
            return Ok(None);
        };
        let (uid, csrf, expires_ms): (Id, String, i64) = (r.get(0), r.get(1), r.get(2));
        Ok(load_user(&**c, uid).await?.map(|(user, _)| Session {
            user,
            csrf,
            expires_ms,
        }))
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let c = self.conn().await?;
        c.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map_err(be)?;
        Ok(())
    }

    async fn create_enrolment_token(
        &self,
        member_id: Id,
        token_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO enrolment_tokens (token_hash, member_id, created_ms, expires_ms) VALUES ($1,$2,$3,$4)",
            &[&token_hash, &member_id, &now_ms, &expires_ms],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn redeem_enrolment_token(
        &self,
        token_hash: &str,
        name: &str,
        credential_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Collector>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        // Taking the token row's lock makes a second concurrent redemption wait and then fail.
        let member = tx
            .query_opt(
                "UPDATE enrolment_tokens SET used_ms = $2 WHERE token_hash = $1 AND used_ms IS NULL \
                 AND expires_ms > $2 RETURNING member_id",
                &[&token_hash, &now_ms],
            )
            .await
            .map_err(be)?;
        let Some(member_id) = member.map(|r| r.get::<_, Id>(0)) else {
            return Ok(None);
        };
        let id: Id = tx
            .query_one(
                "INSERT INTO collectors (member_id, name, credential_hash, created_ms) VALUES ($1,$2,$3,$4) RETURNING id",
                &[&member_id, &name, &credential_hash, &now_ms],
            )
            .await
            .map_err(map_err)?
            .get(0);
        tx.execute(
            "UPDATE enrolment_tokens SET collector_id = $1 WHERE token_hash = $2",
            &[&id, &token_hash],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(Some(Collector {
            id,
            member_id,
            name: name.to_owned(),
            revoked: false,
            last_seen_ms: None,
            version: None,
            stats: None,
        }))
    }

    async fn collector_by_credential(&self, credential_hash: &str) -> Result<Option<Collector>> {
        let c = self.conn().await?;
        c.query_opt(
            &format!(
                "SELECT {COLLECTOR_COLS} FROM collectors c WHERE c.credential_hash = $1 AND c.revoked_ms IS NULL"
            ),
            &[&credential_hash],
        )
        .await
        .map_err(be)?
        .as_ref()
        .map(row_collector)
        .transpose()
    }

    async fn revoke_collector(&self, scope: &Scope, id: Id) -> Result<bool> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let now = p.push(now_ms());
        let idp = p.push(id);
        let cond = scope_sql(scope, &mut p);
        let sql = format!(
            "UPDATE collectors SET revoked_ms = {now} WHERE id = {idp} AND revoked_ms IS NULL AND member_id IN \
             (SELECT m.id FROM members m WHERE {cond})"
        );
        Ok(c.execute(&sql, &p.refs()).await.map_err(be)? > 0)
    }

    async fn collector_heartbeat(
        &self,
        collector_id: Id,
        version: &str,
        stats: &watchhouse_proto::CollectorStats,
        now_ms: i64,
    ) -> Result<()> {
        let stats = serde_json::to_string(stats).map_err(be)?;
        let c = self.conn().await?;
        c.execute(
            "UPDATE collectors SET last_seen_ms = $1, version = $2, stats = $3 WHERE id = $4 AND revoked_ms IS NULL",
            &[&now_ms, &version, &stats, &collector_id],
        )
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn list_collectors(
        &self,
        scope: &Scope,
        member_id: Option<Id>,
    ) -> Result<Vec<Collector>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let cond = scope_sql(scope, &mut p);
        let mut sql = format!(
            "SELECT {COLLECTOR_COLS} FROM collectors c JOIN members m ON m.id = c.member_id WHERE {cond}"
        );
        if let Some(mid) = member_id {
            sql.push_str(&format!(" AND c.member_id = {}", p.push(mid)));
        }
        sql.push_str(" ORDER BY c.id");
        rows(c.query(&sql, &p.refs()).await.map_err(be)?, row_collector)
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
        if events.len() as i64 > EVENT_ID_BLOCK {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {EVENT_ID_BLOCK} events"
            )));
        }
        let days: BTreeSet<i64> = events.iter().map(|e| day_of(e.time_ms)).collect();
        self.ensure_partitions(&days).await?;
        let once = self
            .ingest_once(
                collector,
                batch,
                &events,
                &observations,
                dedup_window_ms,
                now_ms,
            )
            .await;
        match once {
            // Another process dropped a partition this one believed in (retention ran there):
            // forget what was known and try once more.
            Err(StoreError::Invalid(m)) if m.contains("no partition of relation") => {
                self.partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                self.ensure_partitions(&days).await?;
                self.ingest_once(
                    collector,
                    batch,
                    &events,
                    &observations,
                    dedup_window_ms,
                    now_ms,
                )
                .await
            }
            r => r,
        }
    }

    async fn prepare_days(&self, first_day: i64, last_day: i64) -> Result<()> {
        let days: BTreeSet<i64> = (first_day..=last_day.min(first_day + 31)).collect();
        self.ensure_partitions(&days).await
    }

    async fn expire_events(&self, before_day: i64) -> Result<()> {
        let old: Vec<i64> = self
            .partition_days()
            .await?
            .into_iter()
            .filter(|d| *d < before_day)
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_PARTITION])
            .await
            .map_err(be)?;
        for d in &old {
            tx.batch_execute(&format!("DROP TABLE IF EXISTS event_blocks_d{d}"))
                .await
                .map_err(be)?;
        }
        tx.execute(
            "DELETE FROM alert_events WHERE event_time_ms < $1",
            &[&(before_day * DAY_MS)],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        let mut known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        for d in old {
            known.remove(&d);
        }
        Ok(())
    }

    async fn recent_events(
        &self,
        scope: &Scope,
        member_id: Id,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let c = self.conn().await?;
        let mut out = block::Newest::new(limit.min(1000) as usize);
        // Blocks newest first (by their latest event), a page at a time, growing: a busy
        // member's newest block usually holds enough, a quiet one's events are spread thin.
        let mut after: Option<(i64, i64, i64)> = None;
        let mut page = 2i64;
        if !out.wants(i64::MAX) {
            return Ok(out.into_events());
        }
        loop {
            let mut p = Params::default();
            let mid = p.push(member_id);
            let cond = scope_sql(scope, &mut p);
            let mut sql = format!(
                "SELECT b.max_time_ms, b.day, b.first_id, b.collector_id, b.data FROM event_blocks b \
                 JOIN members m ON m.id = b.member_id WHERE b.member_id = {mid} AND {cond}"
            );
            if let Some((t, d, f)) = after {
                sql.push_str(&format!(
                    " AND (b.max_time_ms, b.day, b.first_id) < ({}, {}, {})",
                    p.push(t),
                    p.push(d),
                    p.push(f)
                ));
            }
            sql.push_str(&format!(
                " ORDER BY b.max_time_ms DESC, b.day DESC, b.first_id DESC LIMIT {}",
                p.push(page)
            ));
            let rs = c.query(&sql, &p.refs()).await.map_err(be)?;
            for r in &rs {
                let newest: i64 = r.get(0);
                if !out.wants(newest) {
                    return Ok(out.into_events());
                }
                after = Some((newest, r.get(1), r.get(2)));
                out.add(member_id, r.get(3), r.get::<_, &[u8]>(4))?;
            }
            if (rs.len() as i64) < page {
                break;
            }
            page = (page * 2).min(64);
        }
        Ok(out.into_events())
    }

    async fn event_total(&self, scope: &Scope, member_id: Id) -> Result<u64> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(0);
        }
        let n: i64 = c
            .query_one(
                "SELECT COALESCE(SUM(events), 0)::bigint FROM rollup_daily WHERE member_id = $1",
                &[&member_id],
            )
            .await
            .map_err(be)?
            .get(0);
        Ok(n as u64)
    }

    async fn alerts(&self, scope: &Scope, member_id: Option<Id>, limit: u32) -> Result<Vec<Alert>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let cond = scope_sql(scope, &mut p);
        let mut sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id WHERE {cond}"
        );
        if let Some(mid) = member_id {
            sql.push_str(&format!(" AND a.member_id = {}", p.push(mid)));
        }
        sql.push_str(&format!(
            " ORDER BY CASE a.status WHEN 'resolved' THEN 1 ELSE 0 END, \
             CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, \
             a.last_seen_ms DESC LIMIT {}",
            p.push(limit.min(1000) as i64)
        ));
        rows(c.query(&sql, &p.refs()).await.map_err(be)?, row_alert)
    }

    async fn alert(&self, scope: &Scope, id: Id) -> Result<Option<(Alert, Vec<StoredEvent>)>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let idp = p.push(id);
        let cond = scope_sql(scope, &mut p);
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.id = {idp} AND {cond}"
        );
        let Some(r) = c.query_opt(&sql, &p.refs()).await.map_err(be)? else {
            return Ok(None);
        };
        let alert = row_alert(&r)?;
        // The blocks holding the evidence (an event's block is found by its member, its day and
        // its id, which lies in one block's range only), each with the ids wanted from it.
        let rs = c
            .query(
                "SELECT b.collector_id, b.data, w.ids FROM ( \
                   SELECT b.day, b.first_id, array_agg(ae.event_id) AS ids FROM alert_events ae \
                   JOIN event_blocks b ON b.member_id = ae.member_id \
                    AND b.day = floor(ae.event_time_ms / 86400000.0)::bigint \
                    AND ae.event_id BETWEEN b.first_id AND b.last_id \
                   WHERE ae.member_id = $1 AND ae.alert_id = $2 GROUP BY b.day, b.first_id) w \
                 JOIN event_blocks b ON b.member_id = $1 AND b.day = w.day AND b.first_id = w.first_id",
                &[&alert.member_id, &id],
            )
            .await
            .map_err(be)?;
        let mut evidence = Vec::new();
        for r in &rs {
            let wanted: HashSet<i64> = r.get::<_, Vec<i64>>(2).into_iter().collect();
            evidence.extend(block::decode_where(
                alert.member_id,
                r.get(0),
                r.get(1),
                |id| wanted.contains(&id),
            )?);
        }
        evidence.sort_unstable_by_key(|e| (e.event.time_ms, e.id));
        Ok(Some((alert, evidence)))
    }

    async fn set_alert_status(&self, scope: &Scope, id: Id, status: AlertStatus) -> Result<bool> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let s = p.push(status.as_str());
        let now = p.push(now_ms());
        let idp = p.push(id);
        let cond = scope_sql(scope, &mut p);
        let sql = format!(
            "UPDATE alerts SET status = {s}, updated_ms = {now} WHERE id = {idp} AND member_id IN (SELECT m.id FROM members m WHERE {cond})"
        );
        Ok(c.execute(&sql, &p.refs()).await.map_err(be)? > 0)
    }

    async fn set_alert_feedback(&self, scope: &Scope, id: Id, f: FeedbackEntry) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        let mut p = Params::default();
        let idp = p.push(id);
        let cond = scope_sql(scope, &mut p);
        let sql = format!(
            "SELECT a.member_id, a.kind, a.subject_ip FROM alerts a JOIN members m ON m.id = a.member_id \
             WHERE a.id = {idp} AND {cond} FOR UPDATE OF a"
        );
        let Some(r) = tx.query_opt(&sql, &p.refs()).await.map_err(be)? else {
            return Ok(false);
        };
        let (member_id, kind, subject): (Id, String, String) = (r.get(0), r.get(1), r.get(2));
        let resolve = f.feedback != Feedback::Confirmed;
        tx.execute(
            "UPDATE alerts SET feedback = $1, feedback_note = $2, feedback_by = $3, feedback_ms = $4, \
             status = CASE WHEN $5 THEN 'resolved' ELSE status END, updated_ms = $4 WHERE member_id = $6 AND id = $7",
            &[&f.feedback.as_str(), &f.note, &f.by, &f.now_ms, &resolve, &member_id, &id],
        )
        .await
        .map_err(be)?;
        if resolve {
            tx.execute(
                "INSERT INTO suppressions (member_id, kind, subject_ip, until_ms, reason, created_by, created_ms) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (member_id, kind, subject_ip) DO UPDATE SET \
                 until_ms = excluded.until_ms, reason = excluded.reason, created_by = excluded.created_by",
                &[
                    &member_id,
                    &kind,
                    &subject,
                    &f.suppress_until_ms,
                    &f.feedback.as_str(),
                    &f.by,
                    &f.now_ms,
                ],
            )
            .await
            .map_err(be)?;
        } else {
            tx.execute(
                "DELETE FROM suppressions WHERE member_id = $1 AND kind = $2 AND subject_ip = $3",
                &[&member_id, &kind, &subject],
            )
            .await
            .map_err(be)?;
        }
        tx.commit().await.map_err(be)?;
        Ok(true)
    }

    async fn alerts_after(&self, after_id: Id, limit: u32) -> Result<Vec<Alert>> {
        let c = self.conn().await?;
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.id > $1 ORDER BY a.id LIMIT $2"
        );
        rows(
            c.query(&sql, &[&after_id, &(limit as i64)])
                .await
                .map_err(be)?,
            row_alert,
        )
    }

    async fn alerts_created_between(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        let c = self.conn().await?;
        let mut p = Params::default();
        let from = p.push(from_ms);
        let to = p.push(to_ms);
        let cond = scope_sql(scope, &mut p);
        let lim = p.push(limit as i64);
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a JOIN members m ON m.id = a.member_id \
             WHERE a.created_ms >= {from} AND a.created_ms < {to} AND {cond} ORDER BY a.created_ms DESC LIMIT {lim}"
        );
        rows(c.query(&sql, &p.refs()).await.map_err(be)?, row_alert)
    }

    async fn notify_prefs(&self, user_id: Id) -> Result<(bool, bool)> {
        let c = self.conn().await?;
        c.query_opt(
            "SELECT notify_urgent, notify_digest FROM users WHERE id = $1",
            &[&user_id],
        )
        .await
        .map_err(be)?
        .map(|r| (r.get(0), r.get(1)))
        .ok_or_else(|| StoreError::NotFound("user".into()))
    }

    async fn set_notify_prefs(&self, user_id: Id, urgent: bool, digest: bool) -> Result<()> {
        let c = self.conn().await?;
        c.execute(
            "UPDATE users SET notify_urgent = $1, notify_digest = $2 WHERE id = $3",
            &[&urgent, &digest, &user_id],
        )
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn add_webhook(
        &self,
        scope: &Scope,
        member_id: Id,
        url: &str,
        secret: &str,
    ) -> Result<Option<Webhook>> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(None);
        }
        let now = now_ms();
        let r = c
            .query_one(
                "INSERT INTO webhooks (member_id, url, secret, created_ms) VALUES ($1,$2,$3,$4) RETURNING id",
                &[&member_id, &url, &secret, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(Some(Webhook {
            id: r.get(0),
            member_id,
            url: url.to_owned(),
            secret: secret.to_owned(),
            created_ms: now,
        }))
    }

    async fn list_webhooks(&self, scope: &Scope, member_id: Id) -> Result<Option<Vec<Webhook>>> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(None);
        }
        let rs = c
            .query(
                "SELECT id, member_id, url, secret, created_ms FROM webhooks WHERE member_id = $1 ORDER BY id",
                &[&member_id],
            )
            .await
            .map_err(be)?;
        Ok(Some(rows(rs, |r| {
            Ok(Webhook {
                id: r.get(0),
                member_id: r.get(1),
                url: r.get(2),
                secret: r.get(3),
                created_ms: r.get(4),
            })
        })?))
    }

    async fn delete_webhook(&self, scope: &Scope, member_id: Id, id: Id) -> Result<bool> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(false);
        }
        let n = c
            .execute(
                "DELETE FROM webhooks WHERE id = $1 AND member_id = $2",
                &[&id, &member_id],
            )
            .await
            .map_err(be)?;
        Ok(n == 1)
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let c = self.conn().await?;
        Ok(c.query_opt("SELECT value FROM kv WHERE key = $1", &[&key])
            .await
            .map_err(be)?
            .map(|r| r.get(0)))
    }

    async fn kv_set(&self, key: &str, value: &str) -> Result<()> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO kv (key, value) VALUES ($1,$2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let c = self.conn().await?;
        let n = c
            .execute(
                "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
                 WHERE leases.holder = excluded.holder OR leases.until_ms <= $4",
                &[&name, &holder, &now_ms.saturating_add(ttl_ms), &now_ms],
            )
            .await
            .map_err(be)?;
        Ok(n == 1)
    }

    async fn live_leases(&self, prefix: &str, now_ms: i64) -> Result<Vec<(String, String)>> {
        let c = self.conn().await?;
        Ok(c
            .query(
                "SELECT name, holder FROM leases WHERE left(name, length($1)) = $1 AND until_ms > $2 ORDER BY name",
                &[&prefix, &now_ms],
            )
            .await
            .map_err(be)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn disputed_addresses(
        &self,
        since_ms: i64,
        min_members: u32,
    ) -> Result<Vec<(IpAddr, u32)>> {
        let c = self.conn().await?;
        let rs = c
            .query(
                "SELECT subject_ip, COUNT(DISTINCT member_id) AS n FROM alerts \
                 WHERE feedback = 'false_positive' AND feedback_ms >= $1 \
                 AND kind IN ('listed_source_inbound', 'listed_destination_outbound') \
                 GROUP BY subject_ip HAVING COUNT(DISTINCT member_id) >= $2 ORDER BY n DESC, subject_ip",
                &[&since_ms, &(min_members.max(1) as i64)],
            )
            .await
            .map_err(be)?;
        Ok(rs
            .iter()
            .filter_map(|r| {
                let ip: IpAddr = r.get::<_, &str>(0).parse().ok()?;
                Some((ip, r.get::<_, i64>(1) as u32))
            })
            .collect())
    }

    async fn daily_counts(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayCount>> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(vec![]);
        }
        let rs = c
            .query(
                "SELECT day, allowed, events FROM rollup_daily WHERE member_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day",
                &[&member_id, &from_day, &to_day],
            )
            .await
            .map_err(be)?;
        let mut out: Vec<DayCount> = (from_day..=to_day)
            .map(|day| DayCount {
                day,
                blocked: 0,
                allowed: 0,
            })
            .collect();
        for r in rs {
            let (day, allowed, n): (i64, bool, i64) = (r.get(0), r.get(1), r.get(2));
            if let Some(d) = out.get_mut((day - from_day) as usize) {
                if allowed {
                    d.allowed += n as u64;
                } else {
                    d.blocked += n as u64;
                }
            }
        }
        Ok(out)
    }

    async fn top_sources(
        &self,
        scope: &Scope,
        member_id: Id,
        since_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        self.top_sources_between(scope, member_id, since_day, i64::MAX, n)
            .await
    }

    async fn top_ports(
        &self,
        scope: &Scope,
        member_id: Id,
        since_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        self.top_ports_between(scope, member_id, since_day, i64::MAX, n)
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
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(vec![]);
        }
        let mut sums: HashMap<IpAddr, u64> = HashMap::new();
        for r in c
            .query(
                "SELECT data FROM rollup_src_blocks WHERE member_id = $1 AND day >= $2 AND day <= $3",
                &[&member_id, &from_day, &to_day],
            )
            .await
            .map_err(be)?
        {
            crate::srcblock::for_each(r.get(0), |ip, n| {
                let s = sums.entry(ip).or_default();
                *s = s.saturating_add(n);
            })
            .map_err(StoreError::Backend)?;
        }
        let mut top: Vec<(IpAddr, u64)> = sums.into_iter().collect();
        // Most events first, then by address, as `ORDER BY n DESC, src_ip` would.
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(n.min(100) as usize);
        Ok(top
            .into_iter()
            .map(|(ip, n)| TopItem {
                key: ip.to_string(),
                events: n.min(i64::MAX as u64),
            })
            .collect())
    }

    async fn top_ports_between(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(vec![]);
        }
        let rs = c
            .query(
                "SELECT protocol, dst_port, SUM(events)::bigint AS n FROM rollup_port WHERE member_id = $1 AND day >= $2 AND day <= $3 \
                 GROUP BY protocol, dst_port ORDER BY n DESC, dst_port LIMIT $4",
                &[&member_id, &from_day, &to_day, &(n.min(100) as i64)],
            )
            .await
            .map_err(be)?;
        Ok(top_ports(rs))
    }

    async fn evidence(&self, scope: &Scope, from_ms: i64, to_ms: i64) -> Result<Evidence> {
        let c = self.conn().await?;
        let (d0, d1) = (from_ms.div_euclid(DAY_MS), (to_ms - 1).div_euclid(DAY_MS));
        // Each query: its own parameters ($1, $2 are the range or the days), then the scope's.
        async fn one(c: &Object, sql: &str, a: Option<(i64, i64)>, scope: &Scope) -> Result<i64> {
            let mut p = Params::default();
            let (x, y) = match a {
                Some((x, y)) => (p.push(x), p.push(y)),
                None => (String::new(), String::new()),
            };
            let cond = scope_sql(scope, &mut p);
            let sql = sql
                .replace("{x}", &x)
                .replace("{y}", &y)
                .replace("{cond}", &cond);
            Ok(c.query_one(&sql, &p.refs())
                .await
                .map_err(be)?
                .get::<_, Option<i64>>(0)
                .unwrap_or(0))
        }
        let range = Some((from_ms, to_ms));
        let days = Some((d0, d1));
        let mut e = Evidence {
            members: one(&c, "SELECT COUNT(*) FROM members m WHERE {cond}", None, scope).await? as u64,
            members_reporting: one(
                &c,
                "SELECT COUNT(DISTINCT r.member_id) FROM rollup_daily r JOIN members m ON m.id = r.member_id WHERE r.day >= {x} AND r.day <= {y} AND {cond}",
                days,
                scope,
            )
            .await? as u64,
            events: one(
                &c,
                "SELECT SUM(r.events)::bigint FROM rollup_daily r JOIN members m ON m.id = r.member_id WHERE r.day >= {x} AND r.day <= {y} AND {cond}",
                days,
                scope,
            )
            .await? as u64,
            members_affected: one(
                &c,
                "SELECT COUNT(DISTINCT a.member_id) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.created_ms >= {x} AND a.created_ms < {y} AND {cond}",
                range,
                scope,
            )
            .await? as u64,
            alerts_acted_on: one(
                &c,
                "SELECT COUNT(*) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.created_ms >= {x} AND a.created_ms < {y} AND (a.status != 'new' OR a.feedback IS NOT NULL) AND {cond}",
                range,
                scope,
            )
            .await? as u64,
            open_urgent: one(
                &c,
                "SELECT COUNT(*) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.status != 'resolved' AND a.severity IN ('high', 'critical') AND {cond}",
                None,
                scope,
            )
            .await? as u64,
            ..Evidence::default()
        };
        for (col, map) in [
            ("severity", &mut e.alerts_by_severity),
            ("kind", &mut e.alerts_by_kind),
        ] {
            let mut p = Params::default();
            let (x, y) = (p.push(from_ms), p.push(to_ms));
            let cond = scope_sql(scope, &mut p);
            let sql = format!(
                "SELECT a.{col}, COUNT(*) FROM alerts a JOIN members m ON m.id = a.member_id WHERE a.created_ms >= {x} AND a.created_ms < {y} AND {cond} GROUP BY a.{col}"
            );
            for r in c.query(&sql, &p.refs()).await.map_err(be)? {
                map.insert(r.get(0), r.get::<_, i64>(1) as u64);
            }
        }
        let mut p = Params::default();
        let (x, y) = (p.push(from_ms), p.push(to_ms));
        let cond = scope_sql(scope, &mut p);
        let sql = format!(
            "SELECT GREATEST(COALESCE(a.feedback_ms, 0), a.updated_ms) - a.created_ms FROM alerts a JOIN members m ON m.id = a.member_id \
             WHERE a.created_ms >= {x} AND a.created_ms < {y} AND (a.status != 'new' OR a.feedback IS NOT NULL) AND {cond}"
        );
        let mut waits: Vec<i64> = c
            .query(&sql, &p.refs())
            .await
            .map_err(be)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        waits.sort_unstable();
        e.median_minutes_to_act = waits
            .get(waits.len() / 2)
            .map(|ms| (*ms).max(0) as f64 / 60_000.0);
        Ok(e)
    }

    async fn member_event_totals(&self, from_day: i64, to_day: i64) -> Result<Vec<(Id, u64)>> {
        let c = self.conn().await?;
        let rs = c
            .query(
                "SELECT member_id, SUM(events)::bigint FROM rollup_daily WHERE day >= $1 AND day <= $2 GROUP BY member_id ORDER BY member_id",
                &[&from_day, &to_day],
            )
            .await
            .map_err(be)?;
        Ok(rs
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn add_indicator(&self, i: NewIndicator) -> Result<StoredIndicator> {
        if i.confidence > 100 {
            return Err(StoreError::Invalid("confidence is 0–100".into()));
        }
        if i.category.len() > 64 || i.description.len() > 4096 {
            return Err(StoreError::Invalid(
                "category or description too long".into(),
            ));
        }
        let now = now_ms();
        let c = self.conn().await?;
        let r = c
            .query_one(
                "INSERT INTO indicators (value, kind, category, confidence, tlp, valid_until_ms, description, \
                 created_by, created_ms, modified_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$9) RETURNING id",
                &[
                    &i.value.to_string(),
                    &i.value.kind(),
                    &i.category,
                    &(i.confidence as i32),
                    &i.tlp.as_str(),
                    &i.valid_until_ms,
                    &i.description,
                    &i.created_by,
                    &now,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(StoredIndicator {
            id: r.get(0),
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
    }

    async fn list_indicators(&self, include_revoked: bool) -> Result<Vec<StoredIndicator>> {
        let c = self.conn().await?;
        let rs = c
            .query(
                "SELECT id, value, category, confidence, tlp, valid_until_ms, description, created_by, \
                 created_ms, modified_ms, revoked FROM indicators WHERE NOT revoked OR $1 ORDER BY id DESC",
                &[&include_revoked],
            )
            .await
            .map_err(be)?;
        rows(rs, |r| {
            let id: Id = r.get(0);
            let value = IndicatorValue::parse(r.get(1))
                .map_err(|e| StoreError::Backend(format!("indicator {id}: {e}")))?;
            Ok(StoredIndicator {
                id,
                value,
                category: r.get(2),
                confidence: r.get::<_, i32>(3).clamp(0, 100) as u8,
                tlp: Tlp::from_name(r.get(4)).unwrap_or(Tlp::Red),
                valid_until_ms: r.get(5),
                description: r.get(6),
                created_by: r.get(7),
                created_ms: r.get(8),
                modified_ms: r.get(9),
                revoked: r.get(10),
            })
        })
    }

    async fn revoke_indicator(&self, id: Id, now_ms: i64) -> Result<bool> {
        let c = self.conn().await?;
        let n = c
            .execute(
                "UPDATE indicators SET revoked = TRUE, modified_ms = GREATEST(modified_ms + 1, $1) WHERE id = $2 AND NOT revoked",
                &[&now_ms, &id],
            )
            .await
            .map_err(be)?;
        Ok(n == 1)
    }

    async fn add_exclusion(
        &self,
        scope: &Scope,
        member_id: Id,
        cidr: &str,
        note: &str,
    ) -> Result<bool> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(false);
        }
        c.execute(
            "INSERT INTO blocklist_exclusions (member_id, cidr, note, created_ms) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (member_id, cidr) DO UPDATE SET note = excluded.note",
            &[&member_id, &cidr, &note, &now_ms()],
        )
        .await
        .map_err(map_err)?;
        Ok(true)
    }

    async fn list_exclusions(
        &self,
        scope: &Scope,
        member_id: Id,
    ) -> Result<Option<Vec<Exclusion>>> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(None);
        }
        let rs = c
            .query(
                "SELECT cidr, note, created_ms FROM blocklist_exclusions WHERE member_id = $1 ORDER BY cidr",
                &[&member_id],
            )
            .await
            .map_err(be)?;
        Ok(Some(rows(rs, |r| {
            Ok(Exclusion {
                cidr: r.get(0),
                note: r.get(1),
                created_ms: r.get(2),
            })
        })?))
    }

    async fn delete_exclusion(&self, scope: &Scope, member_id: Id, cidr: &str) -> Result<bool> {
        let c = self.conn().await?;
        if !member_visible(&**c, scope, member_id).await? {
            return Ok(false);
        }
        let n = c
            .execute(
                "DELETE FROM blocklist_exclusions WHERE member_id = $1 AND cidr = $2",
                &[&member_id, &cidr],
            )
            .await
            .map_err(be)?;
        Ok(n == 1)
    }

    async fn widespread_sources(
        &self,
        since_day: i64,
        min_members: u32,
        limit: u32,
    ) -> Result<Vec<SourceSighting>> {
        struct Seen {
            members: Vec<Id>,
            events: u64,
            first_day: i64,
            last_day: i64,
        }
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(be)?;
        let portal = tx
            .bind(
                "SELECT member_id, day, data FROM rollup_src_blocks WHERE day >= $1",
                &[&since_day],
            )
            .await
            .map_err(be)?;
        let mut by_src: HashMap<IpAddr, Seen> = HashMap::new();
        loop {
            let rs = tx.query_portal(&portal, 256).await.map_err(be)?;
            if rs.is_empty() {
                break;
            }
            for r in &rs {
                let (member, day): (Id, i64) = (r.get(0), r.get(1));
                crate::srcblock::for_each(r.get(2), |ip, n| {
                    if watchhouse_intel::is_non_internet(ip) {
                        return;
                    }
                    let s = by_src.entry(ip).or_insert(Seen {
                        members: Vec::new(),
                        events: 0,
                        first_day: day,
                        last_day: day,
                    });
                    if !s.members.contains(&member) {
                        s.members.push(member);
                    }
                    s.events = s.events.saturating_add(n);
                    s.first_day = s.first_day.min(day);
                    s.last_day = s.last_day.max(day);
                })
                .map_err(StoreError::Backend)?;
            }
        }
        tx.commit().await.map_err(be)?;
        let mut out: Vec<SourceSighting> = by_src
            .into_iter()
            .filter(|(_, s)| s.members.len() >= min_members.max(1) as usize)
            .map(|(ip, s)| SourceSighting {
                ip,
                members: s.members.len() as u32,
                events: s.events.min(i64::MAX as u64),
                first_day: s.first_day,
                last_day: s.last_day,
            })
            .collect();
        // Most widespread first, then most events, then by address.
        out.sort_unstable_by(|a, b| {
            b.members
                .cmp(&a.members)
                .then(b.events.cmp(&a.events))
                .then(a.ip.cmp(&b.ip))
        });
        out.truncate(limit as usize);
        Ok(out)
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
        let mut r = self.reach.lock().await;
        // Days long before the one asked about are forgotten; an earlier day than held is read
        // in (a backfill). Holding a month keeps batches from days apart (a collector catching
        // up) from reading each other's days again and again.
        if let Some(d) = r.from_day {
            if since_day > d + REACH_DAYS {
                r.prune(since_day - 1);
            }
        }
        let mut c = self.conn().await?;
        let before = r.left_out;
        r.tail(&mut c, since_day).await?;
        if r.left_out > before {
            tracing::warn!(
                left_out = r.left_out,
                held = r.seen.len(),
                "the campaign count holds {REACH_MAX_SOURCES} sources, its most; newer ones are not counted across hub processes until older days are forgotten"
            );
        }
        Ok(sources
            .iter()
            .filter_map(|ip| {
                let n = r
                    .seen
                    .get(ip)?
                    .iter()
                    .filter(|(m, d)| *m != member_id && *d >= since_day)
                    .count();
                (n > 0).then_some((*ip, n as u32))
            })
            .collect())
    }

    async fn list_feed_configs(&self) -> Result<Vec<(String, String)>> {
        let c = self.conn().await?;
        Ok(
            c.query("SELECT name, config FROM feed_configs ORDER BY name", &[])
                .await
                .map_err(be)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    }

    async fn add_feed_config(&self, name: &str, config_json: &str, created_by: &str) -> Result<()> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO feed_configs (name, config, created_by, created_ms) VALUES ($1,$2,$3,$4)",
            &[&name, &config_json, &created_by, &now_ms()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_feed_config(&self, name: &str) -> Result<bool> {
        let c = self.conn().await?;
        Ok(
            c.execute("DELETE FROM feed_configs WHERE name = $1", &[&name])
                .await
                .map_err(be)?
                == 1,
        )
    }

    async fn create_api_token(&self, user_id: Id, token_hash: &str, name: &str) -> Result<()> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO api_tokens (token_hash, user_id, name, created_ms) VALUES ($1,$2,$3,$4)",
            &[&token_hash, &user_id, &name, &now_ms()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn user_for_api_token(&self, token_hash: &str) -> Result<Option<User>> {
        let c = self.conn().await?;
        let uid = c
            .query_opt(
                "SELECT t.user_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND NOT u.disabled",
                &[&token_hash],
            )
            .await
            .map_err(be)?;
        match uid {
            Some(r) => Ok(load_user(&**c, r.get(0)).await?.map(|(u, _)| u)),
            None => Ok(None),
        }
    }

    async fn add_taxii_object(
        &self,
        collection: &str,
        o: TaxiiObject,
        user_id: Id,
    ) -> Result<bool> {
        let c = self.conn().await?;
        let n = c
            .execute(
                "INSERT INTO taxii_objects (collection, id, version, added_ms, added_by, json) VALUES ($1,$2,$3,$4,$5,$6) \
                 ON CONFLICT (collection, id, version) DO NOTHING",
                &[&collection, &o.id, &o.version, &o.added_ms, &user_id, &o.json],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn taxii_objects(
        &self,
        collection: &str,
        after_ms: i64,
        limit: u32,
    ) -> Result<Vec<TaxiiObject>> {
        let c = self.conn().await?;
        let rs = c
            .query(
                "SELECT id, version, added_ms, json FROM taxii_objects WHERE collection = $1 AND added_ms > $2 \
                 ORDER BY added_ms, id, version LIMIT $3",
                &[&collection, &after_ms, &(limit as i64)],
            )
            .await
            .map_err(be)?;
        rows(rs, |r| {
            Ok(TaxiiObject {
                id: r.get(0),
                version: r.get(1),
                added_ms: r.get(2),
                json: r.get(3),
            })
        })
    }

    async fn put_taxii_status(&self, id: &str, user_id: Id, json: &str) -> Result<()> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO taxii_status (id, user_id, json, created_ms) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (id) DO UPDATE SET json = excluded.json",
            &[&id, &user_id, &json, &now_ms()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn taxii_status(&self, id: &str, user_id: Id) -> Result<Option<String>> {
        let c = self.conn().await?;
        Ok(c.query_opt(
            "SELECT json FROM taxii_status WHERE id = $1 AND user_id = $2",
            &[&id, &user_id],
        )
        .await
        .map_err(be)?
        .map(|r| r.get(0)))
    }
}

impl PostgresStore {
    #[allow(clippy::too_many_arguments)]
    async fn ingest_once(
        &self,
        collector: &Collector,
        batch: &Batch,
        events: &[Event],
        observations: &[Observation],
        dedup_window_ms: i64,
        now_ms: i64,
    ) -> Result<IngestOutcome> {
        let batch_id = batch.batch_id.to_string();
        let stats = match &batch.stats {
            Some(s) => Some(serde_json::to_string(s).map_err(be)?),
            None => None,
        };
        let sums = rollups(events);
        let mut c = self.conn().await?;
        // The batch's ids, and its events encoded and compressed, before the transaction opens:
        // a sequence is outside transactions anyway (a duplicate delivery leaves a gap).
        let block: i64 = c
            .query_one("SELECT nextval('event_id_blocks')", &[])
            .await
            .map_err(be)?
            .get(0);
        let first_id = block * EVENT_ID_BLOCK;
        let blocks = event_blocks(events, first_id)?;
        let tx = c.transaction().await.map_err(be)?;
        // A concurrent delivery of the same batch waits here for the first to commit, then
        // finds the row and stores nothing.
        let fresh = tx
            .execute(
                "INSERT INTO ingest_batches (member_id, collector_id, batch_id, accepted, received_ms) \
                 VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
                &[
                    &collector.member_id,
                    &collector.id,
                    &batch_id,
                    &(events.len() as i64),
                    &now_ms,
                ],
            )
            .await
            .map_err(map_err)?
            == 1;
        if !fresh {
            let accepted: i64 = tx
                .query_one(
                    "SELECT accepted FROM ingest_batches WHERE member_id = $1 AND collector_id = $2 AND batch_id = $3",
                    &[&collector.member_id, &collector.id, &batch_id],
                )
                .await
                .map_err(be)?
                .get(0);
            tx.execute(
                "UPDATE collectors SET last_seen_ms = $1 WHERE id = $2",
                &[&now_ms, &collector.id],
            )
            .await
            .map_err(be)?;
            tx.commit().await.map_err(be)?;
            return Ok(IngestOutcome {
                accepted: accepted as u64,
                duplicate: true,
                ..Default::default()
            });
        }
        insert_blocks(&tx, collector.member_id, collector.id, &blocks).await?;
        upsert_rollups(&tx, collector.member_id, &sums).await?;
        let (alerts_created, alerts_updated) = upsert_alerts(
            &tx,
            collector.member_id,
            events,
            first_id,
            observations,
            dedup_window_ms,
            now_ms,
        )
        .await?;
        tx.execute(
            "UPDATE collectors SET last_seen_ms = $1, version = $2, stats = COALESCE($3, stats) WHERE id = $4",
            &[&now_ms, &batch.collector_version, &stats, &collector.id],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(map_err)?;
        Ok(IngestOutcome {
            accepted: events.len() as u64,
            duplicate: false,
            alerts_created,
            alerts_updated,
        })
    }
}
