//! Ingest across processes: API nodes put collectors' batches on the queue, workers take them
//! off, detect and store them.
//!
//! ```text
//! collector ─POST─▶ API node: authenticate, validate ─▶ Queue::publish (id = collector:batch)
//!                                                           │  JetStream: durable, deduplicated
//! worker ◀─fetch────────────────────────────────────────────┘
//!   └─▶ detect ─▶ Store::ingest (exactly once per collector and batch id) ─▶ ack
//! ```
//!
//! **Invariant: a batch is acknowledged to the queue only after the store committed it** (or
//! found it already stored). A worker killed at any point leaves the message unacknowledged;
//! the queue delivers it again after `queue_ack_wait_secs`, and the store's batch id makes the
//! second delivery store nothing if the first had committed. The collector is answered only
//! after the queue acknowledged the publish, so nothing it deletes from its spool is held only
//! in memory.
//!
//! Large batches (compressed size above `queue_inline_max_bytes`) go into the file store and
//! only their key travels on the queue; the worker deletes the file after acknowledging.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use watchhouse_detect::{campaign, detect};
use watchhouse_event::Event;
use watchhouse_proto::Batch;
use watchhouse_queue::{Delivery, Queue};
use watchhouse_store::{Collector, IngestOutcome, StoreError};

use crate::AppState;

/// A validated batch on its way from an API node to a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueuedBatch {
    /// The authenticated collector (its member decides where the events go).
    pub collector: Collector,
    /// The batch, its events already validated by the API node.
    pub batch: Batch,
    /// When the API node accepted it.
    pub received_ms: i64,
}

impl QueuedBatch {
    /// The same bytes as `serde_json::to_vec(self)`, with the batch written by
    /// [`Batch::write_wire_json`]: an API node encodes every batch it queues.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(b"{\"collector\":");
        serde_json::to_writer(&mut out, &self.collector)?;
        out.extend_from_slice(b",\"batch\":");
        self.batch.write_wire_json(&mut out);
        out.extend_from_slice(b",\"received_ms\":");
        out.extend_from_slice(self.received_ms.to_string().as_bytes());
        out.push(b'}');
        Ok(out)
    }
}

const INLINE: u8 = b'I';
const IN_FILES: u8 = b'F';

/// Opens the queue named by `hub.queue`: one queue per partition.
pub async fn open_queue(cfg: &crate::HubConfig) -> anyhow::Result<Vec<Arc<dyn Queue>>> {
    let parts = watchhouse_queue::nats::NatsQueue::connect_partitions(
        &cfg.queue,
        &cfg.queue_stream,
        cfg.queue_partitions.max(1),
        Duration::from_secs(cfg.queue_ack_wait_secs.max(1)),
        // Collectors retry a batch for hours during an outage; the store's batch ids catch
        // repeats older than this window.
        Duration::from_secs(2 * 3600),
    )
    .await?;
    Ok(parts
        .into_iter()
        .map(|q| Arc::new(q) as Arc<dyn Queue>)
        .collect())
}

/// The partition a member's batches go to.
pub fn partition_of(member_id: watchhouse_store::Id, partitions: usize) -> usize {
    member_id.rem_euclid(partitions.max(1) as i64) as usize
}

/// What a worker should do with the partitions, given how many workers are alive and who holds
/// which partition: keep some of its own, take free ones, give up the rest, so that each
/// worker ends with at most `ceil(partitions / workers)`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Its partitions to renew.
    pub keep: Vec<u32>,
    /// Free partitions to try to take.
    pub take: Vec<u32>,
    /// Its partitions to give up (another worker is owed them).
    pub release: Vec<u32>,
}

/// Plans a worker's partitions (pure).
pub fn plan(
    partitions: u32,
    me: &str,
    workers: usize,
    holders: &std::collections::BTreeMap<u32, String>,
) -> Plan {
    let target = (partitions as usize).div_ceil(workers.max(1));
    let mine: Vec<u32> = holders
        .iter()
        .filter(|(p, h)| h.as_str() == me && **p < partitions)
        .map(|(p, _)| *p)
        .collect();
    if mine.len() > target {
        return Plan {
            keep: mine[..target].to_vec(),
            take: vec![],
            release: mine[target..].to_vec(),
        };
    }
    Plan {
        take: (0..partitions)
            .filter(|p| !holders.contains_key(p))
            .take(target - mine.len())
            .collect(),
        keep: mine,
        release: vec![],
    }
}

/// How long a worker's leases last without renewal: a dead worker's partitions go to others
/// after this (and its unacknowledged batches after the ack wait).
const LEASE_MS: i64 = 10_000;
const WORKER_LEASE: &str = "worker:";
const PARTITION_LEASE: &str = "partition:";

/// Renews this worker's membership and the partitions it holds, without re-planning: what a
/// worker does while a round is under way. A lease another worker has taken meanwhile stays
/// with it.
async fn renew_leases(st: &AppState, owned: &std::collections::BTreeSet<u32>) {
    let me = st.node_id.as_str();
    let now = crate::now_ms();
    let store = &st.store;
    let mut names = vec![format!("{WORKER_LEASE}{me}")];
    names.extend(owned.iter().map(|p| format!("{PARTITION_LEASE}{p}")));
    for name in names {
        match store.try_lease(&name, me, now, LEASE_MS).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(lease = %name, "lease held by another worker"),
            Err(e) => tracing::error!(error = %e, lease = %name, "cannot renew a lease"),
        }
    }
}

/// Renews this worker's membership and partitions, takes and gives up partitions per [`plan`].
async fn balance(
    st: &AppState,
    partitions: u32,
    owned: &std::collections::BTreeSet<u32>,
) -> std::collections::BTreeSet<u32> {
    let me = st.node_id.as_str();
    let now = crate::now_ms();
    let store = &st.store;
    let listed = async {
        store
            .try_lease(&format!("{WORKER_LEASE}{me}"), me, now, LEASE_MS)
            .await?;
        let workers = store.live_leases(WORKER_LEASE, now).await?.len();
        let holders: std::collections::BTreeMap<u32, String> = store
            .live_leases(PARTITION_LEASE, now)
            .await?
            .into_iter()
            .filter_map(|(n, h)| Some((n.strip_prefix(PARTITION_LEASE)?.parse().ok()?, h)))
            .collect();
        Ok::<_, StoreError>((workers, holders))
    };
    let (workers, holders) = match listed.await {
        Ok(v) => v,
        Err(e) => {
            // Keep working on what we hold; the leases run out if this goes on.
            tracing::error!(error = %e, "partition leases unavailable; keeping what this worker holds");
            return owned.clone();
        }
    };
    let plan = plan(partitions, me, workers, &holders);
    let mut mine = std::collections::BTreeSet::new();
    for p in plan.keep.iter().chain(&plan.take) {
        let name = format!("{PARTITION_LEASE}{p}");
        if let Ok(true) = store.try_lease(&name, me, now, LEASE_MS).await {
            mine.insert(*p);
        }
    }
    for p in &plan.release {
        let _ = store
            .try_lease(&format!("{PARTITION_LEASE}{p}"), me, now, 0)
            .await;
    }
    if mine != *owned {
        tracing::info!(workers, partitions = ?mine, "worker's partitions");
    }
    mine
}

/// Detects and stores one batch: the work of the embedded hub in the request, and of a
/// worker per queued batch.
pub async fn store_batch(
    st: &AppState,
    collector: &Collector,
    batch: &Batch,
    events: Vec<Event>,
    now: i64,
) -> Result<IngestOutcome, StoreError> {
    let intel = st.intel();
    let mut observations = detect(&events, &intel.matcher);
    // Campaigns count members across processes: with a queue, other workers hold other
    // members, so the store's count (every process writes it) joins this engine's own.
    let mut others = std::collections::HashMap::new();
    if !st.config.queue.is_empty() {
        let sources = campaign::sources(&events);
        if !sources.is_empty() {
            let since = campaign::since_day(&events, &st.config.detect);
            others = st
                .store
                .source_reach(collector.member_id, &sources, since)
                .await?;
        }
    }
    observations.extend(
        st.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe_with_reach(
                collector.member_id,
                collector.id,
                &batch.batch_id.to_string(),
                &events,
                &others,
            ),
    );
    // Events represented: an aggregated record stands for `count` firewall events.
    let represented: u64 = events.iter().map(|e| e.count.max(1) as u64).sum();
    let out = st
        .store
        .ingest(
            collector,
            batch,
            events,
            observations,
            st.config.dedup_window_secs as i64 * 1000,
            now,
        )
        .await?;
    if out.duplicate {
        st.metrics.batch("duplicate");
        tracing::info!(collector = collector.id, batch = %batch.batch_id, "duplicate batch acknowledged, nothing stored");
    } else {
        st.metrics.batch("stored");
        st.metrics
            .events_ingested
            .fetch_add(represented, Ordering::Relaxed);
        for k in &out.alerts_created {
            st.metrics.alert(*k);
        }
        tracing::debug!(
            collector = collector.id,
            accepted = out.accepted,
            alerts = out.alerts_created.len(),
            "batch stored"
        );
    }
    Ok(out)
}

/// Puts a validated batch on the queue. `Ok(false)`: the queue already had it.
pub async fn enqueue(st: &AppState, queue: &dyn Queue, q: &QueuedBatch) -> anyhow::Result<bool> {
    let json = q.to_json()?;
    let packed = zstd::bulk::compress(&json, 3)?;
    let id = format!("{}:{}", q.collector.id, q.batch.batch_id);
    let payload = if packed.len() < st.config.queue_inline_max_bytes {
        let mut p = Vec::with_capacity(packed.len() + 1);
        p.push(INLINE);
        p.extend_from_slice(&packed);
        p
    } else {
        let key = format!("queue/{}/{}.json.zst", q.collector.id, q.batch.batch_id);
        st.files.put(&key, packed).await?;
        let mut p = vec![IN_FILES];
        p.extend_from_slice(key.as_bytes());
        p
    };
    let fresh = queue.publish(&id, &payload).await?;
    if fresh {
        st.metrics.batch("queued");
    }
    Ok(fresh)
}

/// Why a delivery could not be handled.
enum Failure {
    /// Try again later (the database or file store is down).
    Retry(String),
    /// It will never be readable.
    Poison(String),
}

async fn decode(st: &AppState, payload: &[u8]) -> Result<(QueuedBatch, Option<String>), Failure> {
    let (tag, rest) = payload
        .split_first()
        .ok_or_else(|| Failure::Poison("empty message".into()))?;
    let (packed, key) = match *tag {
        INLINE => (rest.to_vec(), None),
        IN_FILES => {
            let key = std::str::from_utf8(rest)
                .map_err(|_| Failure::Poison("file key is not UTF-8".into()))?
                .to_owned();
            match st.files.get(&key).await {
                Ok(Some(b)) => (b, Some(key)),
                Ok(None) => return Err(Failure::Poison(format!("{key} is not in the file store"))),
                Err(e) => return Err(Failure::Retry(format!("file store: {e}"))),
            }
        }
        t => return Err(Failure::Poison(format!("unknown message kind {t}"))),
    };
    let json = zstd::bulk::decompress(&packed, watchhouse_proto::MAX_BATCH_BYTES * 2)
        .map_err(|e| Failure::Poison(format!("not zstd: {e}")))?;
    let q: QueuedBatch =
        serde_json::from_slice(&json).map_err(|e| Failure::Poison(format!("not a batch: {e}")))?;
    Ok((q, key))
}

/// Handles one delivery: store, then acknowledge. `pause` holds the worker between the two
/// (a failure-injection point for tests that kill workers in that window).
async fn handle(st: &AppState, queue: &dyn Queue, d: Delivery, pause: Duration) {
    if d.attempt > 1 {
        st.metrics.queue_redelivered.fetch_add(1, Ordering::Relaxed);
        tracing::info!(id = %d.id, attempt = d.attempt, "batch delivered again");
    }
    let result = match decode(st, &d.payload).await {
        Ok((mut q, key)) => {
            let events = std::mem::take(&mut q.batch.events);
            match store_batch(st, &q.collector, &q.batch, events, q.received_ms).await {
                Ok(_) => Ok(key),
                Err(e @ StoreError::Backend(_)) => Err(Failure::Retry(e.to_string())),
                // The member or collector went away, or the data breaks a rule: storing it
                // again will not help.
                Err(e) => Err(Failure::Poison(e.to_string())),
            }
        }
        Err(f) => Err(f),
    };
    match result {
        Ok(key) => {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if let Err(e) = queue.ack(d).await {
                // Delivered again later; the store will recognise it.
                tracing::warn!(error = %e, "acknowledgement lost; the batch will come back as a duplicate");
                return;
            }
            if let Some(key) = key {
                if let Err(e) = st.files.delete(&key).await {
                    tracing::warn!(%key, error = %e, "stored batch's file not deleted");
                }
            }
        }
        Err(Failure::Retry(why)) => {
            st.metrics.queue_retried.fetch_add(1, Ordering::Relaxed);
            tracing::error!(id = %d.id, attempt = d.attempt, error = %why, "batch not stored; it goes back to the queue");
            if let Err(e) = queue.nack(d).await {
                tracing::warn!(error = %e, "negative acknowledgement lost; the queue redelivers after the ack wait");
            }
        }
        Err(Failure::Poison(why)) => {
            st.metrics
                .queue_dead_letters
                .fetch_add(1, Ordering::Relaxed);
            let key = format!(
                "dead-letters/{}.bin",
                d.id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
            );
            tracing::error!(id = %d.id, error = %why, %key, "queued message cannot be stored; kept as a dead letter");
            match st.files.put(&key, d.payload.clone()).await {
                Ok(()) => {
                    let _ = queue.ack(d).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "dead letter not saved; leaving the message on the queue");
                    let _ = queue.nack(d).await;
                }
            }
        }
    }
}

/// Batches a worker takes per round, over all the partitions it serves in that round. Leases
/// are renewed while a round runs too ([`renew_leases`]); rebalancing waits for its end.
const BATCHES_PER_ROUND: usize = 8;

/// Serves one partition once: fetches up to `max` batches, stores and acknowledges them in
/// order, and gives back at once what it fetched but did not start when `stop` turns true. Err
/// when the queue is unavailable.
async fn serve(
    st: AppState,
    queue: Arc<dyn Queue>,
    max: usize,
    wait: Duration,
    pause: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let fetched = tokio::select! {
        r = queue.fetch(max, wait) => r,
        _ = stop.changed() => return Ok(()),
    };
    let mut ds = fetched.map_err(|e| e.to_string())?.into_iter();
    for d in ds.by_ref() {
        handle(&st, &*queue, d, pause).await;
        if *stop.borrow() {
            break;
        }
    }
    let rest: Vec<Delivery> = ds.collect();
    if !rest.is_empty() {
        tracing::info!(
            batches = rest.len(),
            "stopping: giving fetched batches back to the queue"
        );
    }
    for d in rest {
        let _ = queue.nack(d).await;
    }
    Ok(())
}

/// A worker: holds some of the queue's partitions (leases in the store, rebalanced every two
/// seconds as workers come and go) and takes batches off them, until `stop` turns true; then it
/// finishes the batches in hand, gives the rest it fetched back to the queue at once, releases
/// its partitions and returns.
///
/// It serves up to `queue_worker_concurrency` of its partitions at once: one partition's
/// batches (one member's) are stored in order, different partitions' side by side, so the
/// database is not left idle while this worker decodes, detects or waits for a commit.
pub async fn run(
    st: AppState,
    parts: Vec<Arc<dyn Queue>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    // Failure injection for the kill-a-worker test: hold each stored batch this long before
    // acknowledging it, so a kill lands between commit and acknowledgement.
    let pause = std::env::var("WATCHHOUSE_FAILPOINT_WORKER_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or_default();
    if !pause.is_zero() {
        tracing::warn!(
            ?pause,
            "failure injection: pausing between storing and acknowledging"
        );
    }
    run_paused(st, parts, stop, pause).await
}

/// [`run`], holding each stored batch `pause` before acknowledging it.
async fn run_paused(
    st: AppState,
    parts: Vec<Arc<dyn Queue>>,
    stop: tokio::sync::watch::Receiver<bool>,
    pause: Duration,
) {
    let concurrency = st.config.queue_worker_concurrency.max(1) as usize;
    tracing::info!(
        partitions = parts.len(),
        concurrency,
        "worker taking batches off the queue"
    );
    let count = parts.len() as u32;
    let mut owned = std::collections::BTreeSet::new();
    let mut balanced: Option<std::time::Instant> = None;
    let mut turn = 0usize;
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        if balanced.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            owned = balance(&st, count, &owned).await;
            balanced = Some(std::time::Instant::now());
        }
        if owned.is_empty() {
            let mut stop = stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // The next partitions in turn, each at most once.
        let picks: Vec<u32> = owned
            .iter()
            .cycle()
            .skip(turn % owned.len())
            .take(owned.len().min(concurrency))
            .copied()
            .collect();
        turn = turn.wrapping_add(picks.len());
        let max = BATCHES_PER_ROUND.div_ceil(picks.len());
        let wait = Duration::from_millis((1000 / owned.len() as u64).clamp(50, 500));
        let mut serving = tokio::task::JoinSet::new();
        for p in picks {
            serving.spawn(serve(
                st.clone(),
                parts[p as usize].clone(),
                max,
                wait,
                pause,
                stop.clone(),
            ));
        }
        let mut failed = None;
        // A slow round (a busy database, a long batch) must not let this live worker's leases
        // run out, or another worker would take its partitions mid-round: they are renewed
        // every two seconds while the round runs, not only between rounds.
        let mut renew = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(2),
            Duration::from_secs(2),
        );
        loop {
            tokio::select! {
                done = serving.join_next() => match done {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => failed = Some(e),
                    Some(Err(e)) => failed = Some(format!("partition task failed: {e}")),
                },
                _ = renew.tick() => renew_leases(&st, &owned).await,
            }
        }
        match failed {
            None => backoff = Duration::from_millis(200),
            Some(e) => {
                tracing::error!(error = %e, "a partition's round failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    // Give the partitions up at once rather than after the lease runs out.
    let now = crate::now_ms();
    let me = st.node_id.as_str();
    for p in &owned {
        let _ = st
            .store
            .try_lease(&format!("{PARTITION_LEASE}{p}"), me, now, 0)
            .await;
    }
    let _ = st
        .store
        .try_lease(&format!("{WORKER_LEASE}{me}"), me, now, 0)
        .await;
    tracing::info!("worker stopped");
}

/// Once an hour, in the process holding the `retention` lease: the next days' storage is prepared,
/// and raw events older than `event_retention_days` are removed (rollups, alerts and reports
/// stay).
pub async fn housekeeping(st: AppState) {
    let every = Duration::from_secs(3600);
    loop {
        let now = crate::now_ms();
        match st
            .store
            .try_lease("retention", &st.node_id, now, 2 * every.as_millis() as i64)
            .await
        {
            Ok(true) => {
                let today = watchhouse_store::day_of(now);
                if let Err(e) = st.store.prepare_days(today, today + 2).await {
                    tracing::error!(error = %e, "cannot prepare the days ahead; batches will create them");
                }
                let before = today - st.config.event_retention_days as i64;
                match st.store.expire_events(before).await {
                    Ok(()) => {
                        tracing::info!(before_day = before, "raw events past retention removed")
                    }
                    Err(e) => tracing::error!(error = %e, "retention failed; will retry"),
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "retention lease unavailable; will retry"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::now_ms;
    use watchhouse_queue::memory::MemoryQueue;
    use watchhouse_store::Scope;

    async fn state(dir: &std::path::Path, inline_max: usize) -> (AppState, Collector) {
        let store = watchhouse_store::open(&format!("sqlite://{}", dir.join("db").display()))
            .await
            .unwrap();
        let f = store.create_force("F", "R").await.unwrap();
        let m = store.create_member(f.id, "M", &[], false).await.unwrap();
        store
            .create_enrolment_token(m.id, "t", 0, i64::MAX)
            .await
            .unwrap();
        let c = store
            .redeem_enrolment_token("t", "c", "cred", 1)
            .await
            .unwrap()
            .unwrap();
        let cfg = crate::HubConfig {
            queue_inline_max_bytes: inline_max,
            data_dir: dir.to_owned(),
            ..Default::default()
        };
        let files = cfg.open_files().unwrap();
        let st = AppState::new(store, files, cfg, crate::intel::Intel::empty());
        (st, c)
    }

    fn batch(n: usize) -> Batch {
        let now = now_ms();
        Batch {
            version: watchhouse_proto::WIRE_VERSION,
            batch_id: uuid::Uuid::new_v4(),
            collector_version: "t".into(),
            sealed_at_ms: now,
            events: (0..n)
                .map(|i| Event {
                    time_ms: now,
                    last_ms: now,
                    action: watchhouse_event::Action::Drop,
                    protocol: watchhouse_event::IpProto::TCP,
                    src_ip: format!("192.0.2.{}", i % 200 + 1).parse().unwrap(),
                    src_port: Some(40000),
                    dst_ip: "198.51.100.1".parse().unwrap(),
                    dst_port: Some((i % 1000 + 1) as u16),
                    direction: watchhouse_event::Direction::Inbound,
                    in_iface: Some("eth0".into()),
                    out_iface: None,
                    rule: None,
                    device: None,
                    format: watchhouse_event::Format::Netfilter,
                    bytes: None,
                    packets: None,
                    count: 1,
                    raw: format!("line {i}"),
                    nat: None,
                    product: None,
                    host: None,
                    url: None,
                })
                .collect(),
            stats: None,
        }
    }

    async fn drain(st: &AppState, q: &MemoryQueue) {
        loop {
            let ds = q.fetch(8, Duration::from_millis(50)).await.unwrap();
            if ds.is_empty() {
                return;
            }
            for d in ds {
                handle(st, q, d, Duration::ZERO).await;
            }
        }
    }

    #[tokio::test]
    async fn queued_batches_are_stored_once_inline_or_through_files() {
        for inline_max in [usize::MAX, 64] {
            let dir = tempfile::tempdir().unwrap();
            let (st, c) = state(dir.path(), inline_max).await;
            let q = MemoryQueue::new(Duration::from_secs(30), Duration::from_secs(60));
            let b = batch(500);
            let qb = QueuedBatch {
                collector: c.clone(),
                batch: b.clone(),
                received_ms: now_ms(),
            };
            assert!(enqueue(&st, &q, &qb).await.unwrap());
            assert!(!enqueue(&st, &q, &qb).await.unwrap(), "deduplicated by id");
            // The same batch published again after the window, as a collector retrying
            // after hours would: the store still stores it once.
            let q2 = MemoryQueue::new(Duration::from_secs(30), Duration::from_secs(60));
            assert!(enqueue(&st, &q2, &qb).await.unwrap());
            drain(&st, &q).await;
            drain(&st, &q2).await;
            let n = st
                .store
                .event_total(&Scope::All, c.member_id)
                .await
                .unwrap();
            assert_eq!(n, 500, "inline_max {inline_max}");
            assert_eq!(
                st.files.list("queue").await.unwrap(),
                Vec::<String>::new(),
                "files of stored batches are deleted"
            );
        }
    }

    #[tokio::test]
    async fn a_queued_batch_is_written_as_serde_json_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, c) = state(dir.path(), usize::MAX).await;
        let mut b = batch(3);
        b.events[1].raw = "quote \" backslash \\ tab \t nul \u{0} \u{e9}".into();
        let q = QueuedBatch {
            collector: c,
            batch: b,
            received_ms: -5,
        };
        assert_eq!(q.to_json().unwrap(), serde_json::to_vec(&q).unwrap());
    }

    #[test]
    fn partitions_spread_over_workers_and_follow_them() {
        use std::collections::BTreeMap;
        let none = BTreeMap::new();
        // Alone: everything.
        let p = plan(16, "a", 1, &none);
        assert_eq!((p.take.len(), p.keep.len(), p.release.len()), (16, 0, 0));
        let all_a: BTreeMap<u32, String> = (0..16).map(|p| (p, "a".to_owned())).collect();
        // A second worker joins: the first gives half up, the second takes them once free.
        let p = plan(16, "a", 2, &all_a);
        assert_eq!(p.keep, (0..8).collect::<Vec<_>>());
        assert_eq!(p.release, (8..16).collect::<Vec<_>>());
        assert!(plan(16, "b", 2, &all_a).take.is_empty(), "nothing free yet");
        let half: BTreeMap<u32, String> = (0..8).map(|p| (p, "a".to_owned())).collect();
        assert_eq!(plan(16, "b", 2, &half).take, (8..16).collect::<Vec<_>>());
        // The second dies: its leases run out, so its partitions are free again.
        let p = plan(16, "a", 1, &half);
        assert_eq!((p.keep.len(), p.take.len()), (8, 8));
        // Uneven: 3 workers, 16 partitions: at most 6 each.
        assert_eq!(plan(16, "c", 3, &none).take.len(), 6);
        assert_eq!(partition_of(17, 16), 1);
        assert_eq!(partition_of(-1, 16), 15);
    }

    /// The partition a worker holds, if any: the holder of the `partition:0` lease.
    async fn holder(st: &AppState) -> Option<String> {
        let leases = st
            .store
            .live_leases(PARTITION_LEASE, now_ms())
            .await
            .unwrap();
        leases
            .into_iter()
            .find(|(n, _)| n == "partition:0")
            .map(|(_, h)| h)
    }

    /// A round that outlasts a lease (eight batches held 1.6 s each: about 13 s against a 10 s
    /// lease) keeps its partition: the busy worker renews while it works, so an idle worker
    /// standing by never takes the partition from it mid-round, and every event is stored once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_longer_than_a_lease_keeps_its_partition() {
        let dir = tempfile::tempdir().unwrap();
        let (busy, c) = state(dir.path(), usize::MAX).await;
        let q = Arc::new(MemoryQueue::new(
            Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        const BATCHES: usize = BATCHES_PER_ROUND;
        for _ in 0..BATCHES {
            let qb = QueuedBatch {
                collector: c.clone(),
                batch: batch(50),
                received_ms: now_ms(),
            };
            assert!(enqueue(&busy, &*q, &qb).await.unwrap());
        }
        let parts: Vec<Arc<dyn Queue>> = vec![q.clone()];
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let pause = Duration::from_millis(1600);
        let a = tokio::spawn(run_paused(busy.clone(), parts.clone(), stop.clone(), pause));
        // The busy worker takes the partition and starts its round.
        let started = std::time::Instant::now();
        while holder(&busy).await.as_deref() != Some(busy.node_id.as_str()) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "partition never taken"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Another worker on the same store and queue, idle and ready to take a free partition.
        let idle = AppState::new(
            busy.store.clone(),
            busy.config.open_files().unwrap(),
            busy.config.clone(),
            crate::intel::Intel::empty(),
        );
        assert_ne!(idle.node_id, busy.node_id);
        let b = tokio::spawn(run_paused(
            idle.clone(),
            parts,
            stop.clone(),
            Duration::ZERO,
        ));
        // Past the first lease's end and before the round's: the partition is still the busy
        // worker's (a failure says how many events it had stored by then).
        let mut checks = 0;
        while started.elapsed() < Duration::from_millis(12_500) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let stored = busy
                .store
                .event_total(&Scope::All, c.member_id)
                .await
                .unwrap();
            assert_eq!(
                holder(&busy).await.as_deref(),
                Some(busy.node_id.as_str()),
                "partition left the busy worker after {:?} ({stored} events stored)",
                started.elapsed()
            );
            if started.elapsed() > Duration::from_millis(LEASE_MS as u64 + 500) {
                checks += 1;
            }
        }
        assert!(checks > 0, "no check fell after the first lease's end");
        // Every batch stored once, by the busy worker, at the round's end.
        while busy
            .store
            .event_total(&Scope::All, c.member_id)
            .await
            .unwrap()
            < (BATCHES * 50) as u64
        {
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "round never ended"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop_tx.send(true).unwrap();
        a.await.unwrap();
        b.await.unwrap();
        let n = busy
            .store
            .event_total(&Scope::All, c.member_id)
            .await
            .unwrap();
        assert_eq!(n, (BATCHES * 50) as u64, "each event stored exactly once");
    }

    #[tokio::test]
    async fn unreadable_messages_become_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = state(dir.path(), usize::MAX).await;
        let q = MemoryQueue::new(Duration::from_secs(30), Duration::from_secs(60));
        q.publish("junk", b"Inot zstd").await.unwrap();
        q.publish("missing", b"Fqueue/1/none.json.zst")
            .await
            .unwrap();
        drain(&st, &q).await;
        assert_eq!(st.metrics.queue_dead_letters.load(Ordering::Relaxed), 2);
        let mut kept = st.files.list("dead-letters").await.unwrap();
        kept.sort();
        assert_eq!(
            kept,
            vec!["dead-letters/junk.bin", "dead-letters/missing.bin"]
        );
        assert!(
            q.fetch(8, Duration::from_millis(50))
                .await
                .unwrap()
                .is_empty(),
            "nothing left blocking the queue"
        );
    }
}
