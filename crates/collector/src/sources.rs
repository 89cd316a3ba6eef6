//! Where lines come from: syslog over UDP and TCP, and files that are followed as they grow.
//!
//! Every source runs in its own task (every TCP connection too), so a slow or broken sender
//! never stalls the others; all feed one bounded channel to the parser. Bad framing is reported
//! on the same channel so it is counted and sampled like any other bad input.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use watchhouse_parse::framing::{Frame, FrameDecoder, DEFAULT_MAX_FRAME};
use watchhouse_parse::Reason;

/// One unit of input for the parser.
#[derive(Debug)]
pub enum Input {
    /// A message or file line.
    Line {
        /// Index of the source (for its format override and counters).
        source: usize,
        /// The bytes, without framing.
        bytes: Vec<u8>,
        /// For file sources: (file index, offset just after this line).
        checkpoint: Option<(usize, u64)>,
    },
    /// Input that could not even be framed.
    Bad {
        /// Index of the source.
        source: usize,
        /// Why.
        reason: Reason,
        /// The first bytes, for the sample.
        sample: Vec<u8>,
    },
}

/// Receives syslog datagrams until shutdown. One datagram is one message.
pub async fn udp(
    sock: UdpSocket,
    source: usize,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    // One byte more than the largest accepted message, so oversize datagrams are detectable.
    let mut buf = vec![0u8; DEFAULT_MAX_FRAME + 1];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, _peer)) => {
                    let msg = trim_end(&buf[..n]);
                    let input = if n > DEFAULT_MAX_FRAME {
                        Input::Bad { source, reason: Reason::Oversize, sample: msg[..512].to_vec() }
                    } else if msg.is_empty() {
                        continue;
                    } else {
                        Input::Line { source, bytes: msg.to_vec(), checkpoint: None }
                    };
                    if tx.send(input).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "udp receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0'] = b {
        b = rest;
    }
    b
}

/// Accepts syslog TCP connections until shutdown; each connection gets its own task.
pub async fn tcp(
    listener: TcpListener,
    source: usize,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    tokio::spawn(tcp_conn(stream, peer, source, tx.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Accepts syslog-over-TLS connections (RFC 5425) until shutdown. Each handshake runs in the
/// connection's own task with a time limit, so a stalled client holds up no one.
pub async fn tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    source: usize,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let (acceptor, tx, shutdown) = (acceptor.clone(), tx.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => tcp_conn(tls, peer, source, tx, shutdown).await,
                            Ok(Err(e)) => tracing::warn!(%peer, error = %e, "syslog TLS handshake refused"),
                            Err(_) => tracing::warn!(%peer, "syslog TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tls accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Idle TCP connections are closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(600);

/// Reads framed syslog from one connection (plain TCP or TLS) until it closes.
pub(crate) async fn tcp_conn<S: tokio::io::AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    source: usize,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut dec = FrameDecoder::default();
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = tokio::time::timeout(TCP_IDLE, stream.read(&mut chunk)) => match r {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => { tracing::debug!(%peer, error = %e, "tcp read failed"); 0 }
                Err(_) => { tracing::debug!(%peer, "idle tcp connection closed"); 0 }
            },
            _ = shutdown.changed() => 0,
        };
        if n == 0 {
            if let Some(f) = dec.finish(&buf) {
                let _ = emit(&tx, source, f).await;
            }
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        loop {
            let d = dec.decode(&buf[pos..]);
            pos += d.consumed;
            let delivered = match d.frame {
                Some(f) => emit(&tx, source, f).await,
                None if d.consumed == 0 => break,
                None => true,
            };
            if !delivered {
                return;
            }
        }
        buf.drain(..pos);
    }
}

async fn emit(tx: &mpsc::Sender<Input>, source: usize, f: Frame<'_>) -> bool {
    let input = match f {
        Frame::Message(m) => Input::Line {
            source,
            bytes: m.to_vec(),
            checkpoint: None,
        },
        Frame::Oversize { .. } => Input::Bad {
            source,
            reason: Reason::Oversize,
            sample: Vec::new(),
        },
        Frame::BadLength => Input::Bad {
            source,
            reason: Reason::BadFraming,
            sample: Vec::new(),
        },
    };
    tx.send(input).await.is_ok()
}

/// Where a followed file was, for resuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FilePos {
    /// Inode (or 0 where unknown), to notice rotation while stopped.
    pub inode: u64,
    /// Byte offset after the last line handed to the parser and spooled.
    pub offset: u64,
}

#[cfg(unix)]
pub(crate) fn inode(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.ino()
}

#[cfg(not(unix))]
pub(crate) fn inode(_m: &std::fs::Metadata) -> u64 {
    0
}

/// Follows a file from `start` (if it is still the same file), through growth and rotation
/// (a new file at the path, or truncation), until shutdown.
#[allow(clippy::too_many_arguments)]
pub async fn tail(
    path: PathBuf,
    source: usize,
    file_index: usize,
    start: Option<FilePos>,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
    poll: Duration,
    inode_tx: mpsc::UnboundedSender<(usize, u64)>,
) {
    let mut pos = start.unwrap_or_default();
    let mut file: Option<tokio::fs::File> = None;
    let mut partial: Vec<u8> = Vec::new();
    // Discarding the rest of a line longer than the limit.
    let mut skipping = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if file.is_none() {
            match tokio::fs::File::open(&path).await {
                Ok(mut f) => {
                    let meta = f.metadata().await.ok();
                    let ino = meta.as_ref().map(inode).unwrap_or(0);
                    let len = meta.map(|m| m.len()).unwrap_or(0);
                    if ino != pos.inode || len < pos.offset {
                        // A different file than the checkpoint describes: start at its beginning.
                        pos = FilePos {
                            inode: ino,
                            offset: 0,
                        };
                    }
                    let _ = inode_tx.send((file_index, ino));
                    if f.seek(std::io::SeekFrom::Start(pos.offset)).await.is_ok() {
                        file = Some(f);
                        partial.clear();
                        skipping = false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot open file"),
            }
        }
        let mut progressed = false;
        if let Some(f) = file.as_mut() {
            match f.read(&mut chunk).await {
                Ok(0) => {}
                Ok(n) => {
                    progressed = true;
                    partial.extend_from_slice(&chunk[..n]);
                    let mut start = 0;
                    while let Some(i) = memchr_newline(&partial[start..]) {
                        let end = start + i;
                        pos.offset += (i + 1) as u64;
                        let line = trim_end(&partial[start..end]);
                        start = end + 1;
                        if skipping {
                            // The end of an oversize line already counted.
                            skipping = false;
                            continue;
                        }
                        if line.is_empty() {
                            continue;
                        }
                        let input = if line.len() > DEFAULT_MAX_FRAME {
                            Input::Bad {
                                source,
                                reason: Reason::Oversize,
                                sample: line[..512].to_vec(),
                            }
                        } else {
                            Input::Line {
                                source,
                                bytes: line.to_vec(),
                                checkpoint: Some((file_index, pos.offset)),
                            }
                        };
                        if tx.send(input).await.is_err() {
                            return;
                        }
                    }
                    partial.drain(..start);
                    if partial.len() > DEFAULT_MAX_FRAME {
                        // A line with no end in sight: count it once, then discard up to its end.
                        if !skipping {
                            let sample = partial[..512].to_vec();
                            let _ = tx
                                .send(Input::Bad {
                                    source,
                                    reason: Reason::Oversize,
                                    sample,
                                })
                                .await;
                        }
                        skipping = true;
                        pos.offset += partial.len() as u64;
                        partial.clear();
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "read failed; reopening");
                    file = None;
                }
            }
            if !progressed {
                // At end of file: has the path been rotated or truncated?
                if let Ok(meta) = tokio::fs::metadata(&path).await {
                    if inode(&meta) != pos.inode || meta.len() < pos.offset {
                        // Finish the old file's last unterminated line, then switch.
                        let line = trim_end(&partial);
                        if !line.is_empty() && line.len() <= DEFAULT_MAX_FRAME {
                            let _ = tx
                                .send(Input::Line {
                                    source,
                                    bytes: line.to_vec(),
                                    checkpoint: None,
                                })
                                .await;
                        }
                        file = None;
                        pos = FilePos {
                            inode: inode(&meta),
                            offset: 0,
                        };
                        continue;
                    }
                }
            }
        }
        if !progressed {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}
