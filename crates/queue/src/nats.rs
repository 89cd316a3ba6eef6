//! NATS JetStream: a file-backed stream with a deduplication window (`Nats-Msg-Id`), one subject
//! and one durable pull consumer per partition, with explicit acknowledgements.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream, AckKind};
use async_trait::async_trait;
use futures_util::StreamExt;

use crate::{Delivery, Queue, QueueError, Result, Token};

/// A JetStream work queue.
pub struct NatsQueue {
    js: jetstream::Context,
    subject: String,
    consumer: jetstream::consumer::Consumer<pull::Config>,
}

fn err(e: impl std::fmt::Display) -> QueueError {
    QueueError::Broker(e.to_string())
}

impl NatsQueue {
    /// Connects to `url` and uses (creating if needed) stream `name` with subject
    /// `<name>.batches.0` and the durable consumer `workers-0`: one partition.
    pub async fn connect(
        url: &str,
        name: &str,
        ack_wait: Duration,
        dedup_window: Duration,
    ) -> Result<NatsQueue> {
        let mut v = Self::connect_partitions(url, name, 1, ack_wait, dedup_window).await?;
        Ok(v.remove(0))
    }

    /// Connects to `url` and uses (creating or updating) stream `name` with `partitions`
    /// subjects `<name>.batches.<p>`, each with its own durable consumer `workers-<p>`: a
    /// queue per partition, so all of one key's messages can go to one consumer.
    pub async fn connect_partitions(
        url: &str,
        name: &str,
        partitions: u32,
        ack_wait: Duration,
        dedup_window: Duration,
    ) -> Result<Vec<NatsQueue>> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| QueueError::Broker(format!("cannot reach NATS at {url}: {e}")))?;
        let js = jetstream::new(client);
        let config = stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{name}.batches.*")],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::WorkQueue,
            duplicate_window: dedup_window,
            ..Default::default()
        };
        let mut stream = js.get_or_create_stream(config.clone()).await.map_err(err)?;
        if stream.info().await.map_err(err)?.config.subjects != config.subjects {
            // A stream from an older layout: take the partitioned subjects.
            js.update_stream(config).await.map_err(err)?;
            stream = js.get_stream(name).await.map_err(err)?;
        }
        let mut out = Vec::with_capacity(partitions as usize);
        for p in 0..partitions.max(1) {
            let subject = format!("{name}.batches.{p}");
            let durable = format!("workers-{p}");
            let consumer = stream
                .get_or_create_consumer(
                    &durable,
                    pull::Config {
                        durable_name: Some(durable.clone()),
                        filter_subject: subject.clone(),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait,
                        max_ack_pending: 10_000,
                        ..Default::default()
                    },
                )
                .await
                .map_err(err)?;
            out.push(NatsQueue {
                js: js.clone(),
                subject,
                consumer,
            });
        }
        Ok(out)
    }

    /// Deletes the stream (tests).
    pub async fn delete(self, name: &str) -> Result<()> {
        self.js.delete_stream(name).await.map_err(err)?;
        Ok(())
    }
}

#[async_trait]
impl Queue for NatsQueue {
    async fn publish(&self, id: &str, payload: &[u8]) -> Result<bool> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        let ack = self
            .js
            .publish_with_headers(
                self.subject.clone(),
                headers,
                bytes::Bytes::copy_from_slice(payload),
            )
            .await
            .map_err(err)?
            .await
            .map_err(err)?;
        Ok(!ack.duplicate)
    }

    async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max.max(1))
            .expires(wait.max(Duration::from_millis(100)))
            .messages()
            .await
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.map_err(err)?;
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let attempt = m.info().map(|i| i.delivered as u64).unwrap_or(1);
            out.push(Delivery {
                id,
                payload: m.payload.to_vec(),
                attempt,
                token: Token::Nats(Box::new(m)),
            });
        }
        Ok(out)
    }

    async fn ack(&self, d: Delivery) -> Result<()> {
        if let Token::Nats(m) = d.token {
            m.double_ack().await.map_err(err)?;
        }
        Ok(())
    }

    async fn nack(&self, d: Delivery) -> Result<()> {
        if let Token::Nats(m) = d.token {
            m.ack_with(AckKind::Nak(None)).await.map_err(err)?;
        }
        Ok(())
    }
}
