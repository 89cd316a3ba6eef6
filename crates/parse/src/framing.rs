//! Splitting a syslog byte stream into messages (RFC 6587).
//!
//! TCP syslog comes in two framings: *octet counting* (`MSG-LEN SP MSG`) and *non-transparent*
//! framing (messages separated by LF). Senders differ, and some switch, so the framing is detected
//! per frame: a frame starting with a digit `1`–`9` is octet-counted, anything else runs to the
//! next LF. A frame larger than the limit is skipped (its bytes are consumed without buffering)
//! and reported as [`Frame::Oversize`], so one hostile sender cannot exhaust memory or stall the
//! stream.
//!
//! The decoder is pure and incremental: feed it whatever the socket produced, take frames out,
//! and keep the unconsumed tail for the next read.

/// Default maximum message size: 64 KiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// What [`FrameDecoder::decode`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete message (without its length prefix or trailing LF / CR LF).
    Message(&'a [u8]),
    /// A message that exceeded the limit; its bytes are consumed (now or as they arrive).
    Oversize {
        /// Declared or observed length so far.
        len: usize,
    },
    /// An octet-count prefix that is not a number; the line it is on is discarded.
    BadLength,
}

/// Result of one decode step: how many bytes to drop from the front of the buffer, and a frame
/// if one was completed.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes consumed from the front of the buffer.
    pub consumed: usize,
    /// The frame, or `None` when more input is needed.
    pub frame: Option<Frame<'a>>,
}

/// Incremental RFC 6587 frame decoder with auto-detected framing.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// Largest message accepted.
    max: usize,
    /// Bytes still to discard from an oversize octet-counted frame.
    skip: usize,
    /// Discarding an oversize LF-framed message until its LF.
    skip_to_newline: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that rejects messages longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            max,
            skip: 0,
            skip_to_newline: false,
        }
    }

    /// Decodes at most one frame from the front of `buf`.
    ///
    /// Call repeatedly, dropping `consumed` bytes each time, until it returns `frame: None`
    /// with `consumed: 0`; then read more input. At end of stream, call [`FrameDecoder::finish`]
    /// for a final unterminated message.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Decoded<'a> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            self.skip -= n;
            return Decoded {
                consumed: n,
                frame: None,
            };
        }
        if self.skip_to_newline {
            return match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    self.skip_to_newline = false;
                    Decoded {
                        consumed: i + 1,
                        frame: None,
                    }
                }
                None => Decoded {
                    consumed: buf.len(),
                    frame: None,
                },
            };
        }
        // Skip stray separators between frames.
        let start = buf
            .iter()
            .position(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
            .unwrap_or(buf.len());
        if start > 0 {
            return Decoded {
                consumed: start,
                frame: None,
            };
        }
        if buf.is_empty() {
            return Decoded {
                consumed: 0,
                frame: None,
            };
        }
        if matches!(buf[0], b'1'..=b'9') {
            self.decode_counted(buf)
        } else {
            self.decode_line(buf)
        }
    }

    fn decode_counted<'a>(&mut self, buf: &'a [u8]) -> Decoded<'a> {
        // MSG-LEN is at most 10 digits followed by one space.
        let digits = buf
            .iter()
            .take(11)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == buf.len() {
            // Need more input to see the end of the number.
            return Decoded {
                consumed: 0,
                frame: None,
            };
        }
        if buf[digits] != b' ' || digits > 10 {
            // Not octet counting after all: a plain line that starts with a digit
            // (e.g. a file line or a sender that omits PRI). Treat it as LF framed.
            return self.decode_line(buf);
        }
        let len: usize = match std::str::from_utf8(&buf[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(n) => n,
            None => {
                self.skip_to_newline = true;
                return Decoded {
                    consumed: digits,
                    frame: Some(Frame::BadLength),
                };
            }
        };
        let header = digits + 1;
        // A syslog message always starts with its PRI, `<`. Lines such as Proxmox's
        // `101 1 tap101i0-IN …` start with a number and a space too: they are LF framed.
        match buf.get(header) {
            None => {
                return Decoded {
                    consumed: 0,
                    frame: None,
                }
            }
            Some(b'<') => {}
            Some(_) => return self.decode_line(buf),
        }
        if len > self.max {
            let available = buf.len() - header;
            let now = available.min(len);
            self.skip = len - now;
            return Decoded {
                consumed: header + now,
                frame: Some(Frame::Oversize { len }),
            };
        }
        if buf.len() - header < len {
            return Decoded {
                consumed: 0,
                frame: None,
            };
        }
        let msg = trim_trailing_newline(&buf[header..header + len]);
        Decoded {
            consumed: header + len,
            frame: Some(Frame::Message(msg)),
        }
    }

    fn decode_line<'a>(&mut self, buf: &'a [u8]) -> Decoded<'a> {
        let limit = buf.len().min(self.max + 2);
        match memchr::memchr(b'\n', &buf[..limit]) {
            Some(i) => {
                let msg = trim_trailing_newline(&buf[..i]);
                if msg.len() > self.max {
                    return Decoded {
                        consumed: i + 1,
                        frame: Some(Frame::Oversize { len: msg.len() }),
                    };
                }
                Decoded {
                    consumed: i + 1,
                    frame: Some(Frame::Message(msg)),
                }
            }
            None if buf.len() > self.max + 1 => {
                // No LF within the limit: report once, then discard up to the next LF.
                self.skip_to_newline = true;
                Decoded {
                    consumed: limit,
                    frame: Some(Frame::Oversize { len: limit }),
                }
            }
            None => Decoded {
                consumed: 0,
                frame: None,
            },
        }
    }

    /// At end of stream: the unterminated remainder, if any, as a last frame.
    pub fn finish<'a>(&mut self, buf: &'a [u8]) -> Option<Frame<'a>> {
        if self.skip > 0 || self.skip_to_newline {
            self.skip = 0;
            self.skip_to_newline = false;
            return None;
        }
        let msg = trim_trailing_newline(buf);
        let msg = match msg
            .iter()
            .position(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
        {
            Some(i) => &msg[i..],
            None => return None,
        };
        if msg.len() > self.max {
            Some(Frame::Oversize { len: msg.len() })
        } else {
            Some(Frame::Message(msg))
        }
    }
}

fn trim_trailing_newline(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0'] = b {
        b = rest;
    }
    b
}

/// Convenience for tests and files: decodes a whole buffer into owned frames.
pub fn decode_all(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, Frame<'static>>> {
    let mut d = FrameDecoder::new(max);
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let r = d.decode(&input[pos..]);
        pos += r.consumed;
        match r.frame {
            Some(Frame::Message(m)) => out.push(Ok(m.to_vec())),
            Some(Frame::Oversize { len }) => out.push(Err(Frame::Oversize { len })),
            Some(Frame::BadLength) => out.push(Err(Frame::BadLength)),
            None if r.consumed == 0 => break,
            None => {}
        }
    }
    match d.finish(&input[pos..]) {
        Some(Frame::Message(m)) => out.push(Ok(m.to_vec())),
        Some(Frame::Oversize { len }) => out.push(Err(Frame::Oversize { len })),
        Some(Frame::BadLength) => out.push(Err(Frame::BadLength)),
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(input: &[u8]) -> Vec<Vec<u8>> {
        decode_all(input, 64)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| format!("{e:?}").into_bytes()))
            .collect()
    }

    #[test]
    fn newline_framing() {
        assert_eq!(
            msgs(b"<1>a\n<2>b\r\n<3>c"),
            vec![b"<1>a".to_vec(), b"<2>b".to_vec(), b"<3>c".to_vec()]
        );
    }

    #[test]
    fn octet_counting() {
        assert_eq!(
            msgs(b"4 <1>a5 <2>bc"),
            vec![b"<1>a".to_vec(), b"<2>bc".to_vec()]
        );
    }

    #[test]
    fn mixed_framing_is_detected_per_frame() {
        assert_eq!(
            msgs(b"4 <1>a<2>b\n3 <3>"),
            vec![b"<1>a".to_vec(), b"<2>b".to_vec(), b"<3>".to_vec()]
        );
    }

    #[test]
    fn oversize_counted_frame_is_skipped_without_buffering() {
        let mut input = b"100 ".to_vec();
        input.push(b'<');
        input.extend(std::iter::repeat_n(b'x', 99));
        input.extend(b"4 <1>a");
        let out = decode_all(&input, 64);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Err(Frame::Oversize { len: 100 }));
        assert_eq!(out[1], Ok(b"<1>a".to_vec()));
    }

    #[test]
    fn oversize_line_is_skipped_to_next_newline() {
        let mut input = vec![b'<'; 200];
        input.extend(b"\n<1>ok\n");
        let out = decode_all(&input, 64);
        assert!(matches!(out[0], Err(Frame::Oversize { .. })));
        assert_eq!(out.last().unwrap(), &Ok(b"<1>ok".to_vec()));
    }

    #[test]
    fn plain_line_starting_with_digit_is_not_octet_counted() {
        assert_eq!(
            msgs(b"0 3 PVEFW x\n53,,,1 y\n101 1 tap-IN z\n"),
            vec![
                b"0 3 PVEFW x".to_vec(),
                b"53,,,1 y".to_vec(),
                b"101 1 tap-IN z".to_vec()
            ]
        );
    }

    #[test]
    fn partial_input_waits() {
        let mut d = FrameDecoder::new(64);
        assert_eq!(d.decode(b"12").consumed, 0);
        assert_eq!(d.decode(b"12 <1>ab").consumed, 0);
        let r = d.decode(b"9 <1>abcdef");
        assert_eq!(r.frame, Some(Frame::Message(b"<1>abcdef".as_slice())));
    }
}
