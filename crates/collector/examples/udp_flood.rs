//! Sends syslog over UDP at a fixed rate: `udp_flood ADDR RATE SECONDS`. Prints how many it sent.
//! Messages are varied iptables lines (distinct flows). Paced per millisecond.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let mut a = std::env::args().skip(1);
    let addr = a.next().expect("usage: udp_flood ADDR RATE SECONDS");
    let rate: u64 = a.next().unwrap().parse().unwrap();
    let secs: u64 = a.next().unwrap().parse().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(&addr).unwrap();
    let total = rate * secs;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut buf = String::with_capacity(300);
    while sent < total {
        let due = (start.elapsed().as_micros() as u64 * rate / 1_000_000).min(total);
        while sent < due {
            let i = sent;
            buf.clear();
            use std::fmt::Write;
            let _ = write!(
                buf,
                "<4>Nov 21 06:{:02}:{:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.18.{}.{} DST=198.51.100.{} LEN=40 PROTO=TCP SPT={} DPT={} SYN",
                (i / 60) % 60,
                i % 60,
                (i / 250) % 250,
                i % 250 + 1,
                1 + i % 14,
                1024 + i % 60000,
                1 + (i / 13) % 65000
            );
            if sock.send(buf.as_bytes()).is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("{sent} sent in {:.2} s", start.elapsed().as_secs_f64());
}
