//! RFC 6587 framing: arbitrary bytes, fed whole and in two pieces, never panic, never return a
//! message longer than the limit, and both feeds agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchhouse_parse::framing::{decode_all, Frame, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let max = 256;
    let whole = decode_all(data, max);
    for m in whole.iter().flatten() {
        assert!(m.len() <= max);
    }
    // The same stream split at an arbitrary point.
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut d = FrameDecoder::new(max);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            let r = d.decode(&buf[pos..]);
            pos += r.consumed;
            match r.frame {
                Some(Frame::Message(m)) => got.push(Ok(m.to_vec())),
                Some(Frame::Oversize { len }) => got.push(Err(Frame::Oversize { len })),
                Some(Frame::BadLength) => got.push(Err(Frame::BadLength)),
                None if r.consumed == 0 => break,
                None => {}
            }
        }
        buf.drain(..pos);
    }
    if let Some(Frame::Message(m)) = d.finish(&buf) {
        got.push(Ok(m.to_vec()));
    }
    let msgs = |v: &[Result<Vec<u8>, Frame<'static>>]| v.iter().filter_map(|r| r.as_ref().ok().cloned()).collect::<Vec<_>>();
    // Oversize frames may be reported at different lengths when split; messages must agree.
    assert_eq!(msgs(&whole), msgs(&got));
});
