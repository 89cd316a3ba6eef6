//! The queue conformance suite: one set of behaviours, run against the in-process queue and
//! against NATS JetStream (127.0.0.1:4222, or WATCHHOUSE_TEST_NATS; `.ci/run` starts it).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use watchhouse_queue::memory::MemoryQueue;
use watchhouse_queue::nats::NatsQueue;
use watchhouse_queue::Queue;

const ACK_WAIT: Duration = Duration::from_secs(1);

async fn drain(q: &dyn Queue, n: usize) -> Vec<(String, u64)> {
    let mut got = Vec::new();
    for _ in 0..200 {
        if got.len() >= n {
            break;
        }
        for d in q.fetch(20, Duration::from_millis(300)).await.unwrap() {
            got.push((d.id.clone(), d.attempt));
            q.ack(d).await.unwrap();
        }
    }
    got
}

/// Takes and acknowledges until a fetch comes back empty.
async fn until_empty(q: &dyn Queue) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let batch = q.fetch(20, Duration::from_millis(500)).await.unwrap();
        if batch.is_empty() {
            return got;
        }
        for d in batch {
            got.push(d.id.clone());
            q.ack(d).await.unwrap();
        }
    }
}

async fn suite(q: Arc<dyn Queue>) {
    // Publish, with a duplicate id that must not be stored again.
    for i in 0..50 {
        assert!(q
            .publish(&format!("m{i}"), format!("payload {i}").as_bytes())
            .await
            .unwrap());
    }
    assert!(
        !q.publish("m7", b"again").await.unwrap(),
        "deduplicated by id"
    );
    let got = drain(q.as_ref(), 50).await;
    let ids: BTreeSet<&str> = got.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!((got.len(), ids.len()), (50, 50), "each once: {got:?}");
    assert!(got.iter().all(|(_, a)| *a == 1));
    assert!(
        q.fetch(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty(),
        "acked ones never come back"
    );

    // Unacknowledged: delivered again after the ack wait; nack: delivered again at once.
    assert!(q.publish("r", b"redeliver me").await.unwrap());
    let d = q
        .fetch(1, Duration::from_secs(2))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (d.id.as_str(), d.attempt, d.payload.as_slice()),
        ("r", 1, &b"redeliver me"[..])
    );
    drop(d); // a worker that died mid-batch
    tokio::time::sleep(ACK_WAIT + Duration::from_millis(300)).await;
    let d = q
        .fetch(1, Duration::from_secs(3))
        .await
        .unwrap()
        .pop()
        .expect("redelivered");
    assert_eq!((d.id.as_str(), d.attempt), ("r", 2));
    q.nack(d).await.unwrap();
    let d = q
        .fetch(1, Duration::from_secs(3))
        .await
        .unwrap()
        .pop()
        .expect("redelivered after nack");
    assert_eq!((d.id.as_str(), d.attempt), ("r", 3));
    q.ack(d).await.unwrap();
    assert!(q
        .fetch(1, Duration::from_millis(1500))
        .await
        .unwrap()
        .is_empty());

    // Two workers share the work: everything once, nothing twice.
    for i in 0..100 {
        q.publish(&format!("w{i}"), b"x").await.unwrap();
    }
    let (a, b) = (q.clone(), q.clone());
    let (ga, gb) = tokio::join!(
        tokio::spawn(async move { until_empty(a.as_ref()).await }),
        tokio::spawn(async move { until_empty(b.as_ref()).await })
    );
    let mut all: Vec<String> = ga.unwrap().into_iter().chain(gb.unwrap()).collect();
    all.extend(until_empty(q.as_ref()).await);
    let set: BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), set.len()), (100, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_queue_conforms() {
    suite(Arc::new(MemoryQueue::new(
        ACK_WAIT,
        Duration::from_secs(120),
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_conforms() {
    let url = std::env::var("WATCHHOUSE_TEST_NATS").unwrap_or_else(|_| "127.0.0.1:4222".into());
    let name = format!("WH_TEST_{}", uuid::Uuid::new_v4().simple());
    let q = NatsQueue::connect(&url, &name, ACK_WAIT, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| {
            panic!("{e}: start NATS with JetStream (nats-server -js); .ci/run does")
        });
    let q = Arc::new(q);
    suite(q.clone()).await;
    if let Ok(q) = Arc::try_unwrap(q) {
        q.delete(&name).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_partitions_keep_their_messages_apart() {
    let url = std::env::var("WATCHHOUSE_TEST_NATS").unwrap_or_else(|_| "127.0.0.1:4222".into());
    let name = format!("WH_TEST_{}", uuid::Uuid::new_v4().simple());
    let mut parts =
        NatsQueue::connect_partitions(&url, &name, 3, ACK_WAIT, Duration::from_secs(120))
            .await
            .unwrap();
    for i in 0..30 {
        parts[i % 3]
            .publish(&format!("m{i}"), format!("{}", i % 3).as_bytes())
            .await
            .unwrap();
    }
    // The same id on another partition is still a duplicate: one stream, one window.
    assert!(!parts[1].publish("m0", b"0").await.unwrap());
    for (p, q) in parts.iter().enumerate() {
        let ids = until_empty(q).await;
        assert_eq!(ids.len(), 10, "partition {p}: {ids:?}");
        assert!(ids
            .iter()
            .all(|id| id[1..].parse::<usize>().unwrap() % 3 == p));
    }
    // Reconnecting (another process) finds the same layout.
    let again = NatsQueue::connect_partitions(&url, &name, 3, ACK_WAIT, Duration::from_secs(120))
        .await
        .unwrap();
    again[2].publish("late", b"2").await.unwrap();
    assert_eq!(until_empty(&parts[2]).await, vec!["late".to_owned()]);
    drop(again);
    parts.remove(0).delete(&name).await.unwrap();
}
