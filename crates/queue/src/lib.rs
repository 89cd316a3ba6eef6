//! The queue between the hub's API nodes (which accept collectors' batches) and its workers
//! (which detect and store them): at-least-once delivery, deduplicated by message id.
//!
//! Two implementations of one [`Queue`] trait, proven by one conformance suite
//! (`tests/conformance.rs`): [`memory::MemoryQueue`], the embedded default inside one process,
//! and [`nats::NatsQueue`] on NATS JetStream for several hub processes.
//!
//! **Invariant: a message is delivered until it is acknowledged.** A delivery not acknowledged
//! within the ack wait (or negatively acknowledged) is delivered again, with its attempt count
//! raised; a message published twice with the same id within the deduplication window is
//! stored once.

use std::time::Duration;

use async_trait::async_trait;

pub mod memory;
pub mod nats;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker could not be reached or refused the operation.
    #[error("queue: {0}")]
    Broker(String),
}

/// Result of queue operations.
pub type Result<T> = std::result::Result<T, QueueError>;

/// One delivery of a message.
#[derive(Debug)]
pub struct Delivery {
    /// The publisher's id (the deduplication key).
    pub id: String,
    /// The body.
    pub payload: Vec<u8>,
    /// 1 for the first delivery, then 2, 3…
    pub attempt: u64,
    token: Token,
}

#[derive(Debug)]
enum Token {
    Memory(u64),
    Nats(Box<async_nats::jetstream::Message>),
}

/// At-least-once queue with deduplication by id.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Publishes; `Ok(false)` when a message with this id was already published within the
    /// deduplication window (it is not stored again).
    async fn publish(&self, id: &str, payload: &[u8]) -> Result<bool>;
    /// Up to `max` deliveries, waiting at most `wait` for the first.
    async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>>;
    /// Done with it: never delivered again.
    async fn ack(&self, d: Delivery) -> Result<()>;
    /// Not done: deliver again soon.
    async fn nack(&self, d: Delivery) -> Result<()>;
}
