//! `watchhouse demo`: the whole cyber alarm in one process.
//!
//! Seeds two forces, three members and a user for every role (fresh passwords printed at each
//! start), runs the hub, one real collector per member, and a simulator that sends realistic
//! firewall traffic over real syslog: iptables/UFW over UDP and TCP, pfSense filterlog over
//! octet-counted TCP. The traffic includes scans from listed addresses, connections from listed
//! addresses that the firewall let through, a device calling a listed server (reported through
//! the watchlist although the members have not opted in to outbound), internal and outbound
//! traffic the collectors must keep private, and lines no parser understands.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use watchhouse_intel::{is_non_internet, parse_netset, Cidr};
use watchhouse_store::{Id, Member, NewUser, Role, Scope, Store};

use crate::config::Config;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's database, collectors and feed.
    #[arg(long, default_value = "./watchhouse-data")]
    data_dir: PathBuf,
    /// Address for the web UI and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Approximate firewall lines per second per member.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// A known-bad list to use instead of the generated demo list (e.g. a FireHOL .netset).
    #[arg(long)]
    feed: Option<PathBuf>,
    /// Also write the demo accounts and members as JSON to this file (for scripts and tests).
    #[arg(long)]
    credentials_file: Option<PathBuf>,
}

const FORCES: &[(&str, &str)] = &[
    ("Northshire Police", "North West"),
    ("Southmoor Constabulary", "South East"),
];

/// (name, force index, network, public address, transport)
const MEMBERS: &[(&str, usize, &str, &str, Transport)] = &[
    (
        "Riverside Primary School",
        0,
        "198.51.100.0/28",
        "198.51.100.10",
        Transport::UdpIptables,
    ),
    (
        "Harbour Dental Practice",
        0,
        "198.51.100.16/28",
        "198.51.100.20",
        Transport::TcpCountedFilterlog,
    ),
    (
        "Oakfield Community Trust",
        1,
        "198.51.100.32/28",
        "198.51.100.40",
        Transport::TcpLineUfw,
    ),
];

/// (email, name, role, members by index, force by index, region)
type UserSeed = (
    &'static str,
    &'static str,
    Role,
    &'static [usize],
    Option<usize>,
    Option<&'static str>,
);
const USERS: &[UserSeed] = &[
    (
        "partner@cert.example",
        "Regional CERT (sharing partner)",
        Role::Partner,
        &[],
        None,
        None,
    ),
    (
        "admin@watchhouse.example",
        "Alex Admin",
        Role::Admin,
        &[],
        None,
        None,
    ),
    (
        "analyst@watchhouse.example",
        "Nia National",
        Role::Analyst,
        &[],
        None,
        None,
    ),
    (
        "officer@northshire.example",
        "Priya Protect",
        Role::ForceOfficer,
        &[],
        Some(0),
        None,
    ),
    (
        "officer@southmoor.example",
        "Sam Southmoor",
        Role::ForceOfficer,
        &[],
        Some(1),
        None,
    ),
    (
        "head@riverside.example",
        "Rachel Riverside",
        Role::MemberAdmin,
        &[0],
        None,
        None,
    ),
    (
        "office@harbour.example",
        "Hari Harbour",
        Role::MemberViewer,
        &[1],
        None,
        None,
    ),
    (
        "it@oakfield.example",
        "Olu Oakfield",
        Role::MemberAdmin,
        &[2],
        None,
        None,
    ),
    (
        "support@msp.example",
        "Morgan MSP",
        Role::Msp,
        &[0, 2],
        None,
        None,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    UdpIptables,
    TcpCountedFilterlog,
    TcpLineUfw,
}

#[derive(Debug, Serialize)]
struct DemoUser {
    email: String,
    password: String,
    role: &'static str,
    member_ids: Vec<Id>,
    force_id: Option<Id>,
}

#[derive(Debug, Serialize)]
struct Credentials {
    url: String,
    users: Vec<DemoUser>,
    members: Vec<Member>,
    /// Where each demo collector listens, so scripts can send it their own lines.
    collectors: Vec<DemoCollector>,
}

#[derive(Debug, Serialize)]
struct DemoCollector {
    member_id: Id,
    udp: String,
    tcp: String,
    /// The member's public address the simulator attacks.
    target: String,
}

async fn seed(store: &dyn Store) -> Result<(Vec<Id>, Vec<Member>, bool)> {
    let existing = store.list_forces(&Scope::All).await?;
    let fresh = existing.is_empty();
    let mut force_ids = Vec::new();
    for (name, region) in FORCES {
        let id = match existing.iter().find(|f| f.name == *name) {
            Some(f) => f.id,
            None => store.create_force(name, region).await?.id,
        };
        force_ids.push(id);
    }
    let current = store.list_members(&Scope::All).await?;
    let mut members = Vec::new();
    for (name, force, net, _, _) in MEMBERS {
        let m = match current.iter().find(|m| m.name == *name) {
            Some(m) => m.clone(),
            None => {
                store
                    .create_member(force_ids[*force], name, &[net.to_string()], false)
                    .await?
            }
        };
        members.push(m);
    }
    Ok((force_ids, members, fresh))
}

async fn seed_users(
    store: &dyn Store,
    force_ids: &[Id],
    members: &[Member],
) -> Result<Vec<DemoUser>> {
    let mut out = Vec::new();
    for (email, name, role, mem, force, region) in USERS {
        let password = crate::admin::generate_password();
        let hash = watchhouse_hub::auth::hash_password(&password);
        let member_ids: Vec<Id> = mem.iter().map(|i| members[*i].id).collect();
        let force_id = force.map(|i| force_ids[i]);
        if store.user_for_login(email).await?.is_some() {
            store.set_password(email, &hash).await?;
        } else {
            store
                .create_user(NewUser {
                    email: email.to_string(),
                    name: name.to_string(),
                    password_hash: hash,
                    role: *role,
                    force_id,
                    region: region.map(str::to_owned),
                    member_ids: member_ids.clone(),
                    max_tlp: (*role == Role::Partner).then_some(watchhouse_intel::Tlp::Green),
                })
                .await?;
        }
        out.push(DemoUser {
            email: email.to_string(),
            password,
            role: role.as_str(),
            member_ids,
            force_id,
        });
    }
    Ok(out)
}

/// The generated demo list: documentation ranges stand in for attackers, so no real address is
/// accused. `--feed` replaces it with a real list.
const DEMO_FEED: &str = "\
# Watchhouse demo list (generated). Documentation ranges stand in for known attackers.
# category: attacks
203.0.113.0/24
192.0.2.0/25
";

/// A small, fast, seedable generator (xorshift64*), enough for traffic simulation.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("the operating system's random source failed");
        Rng(u64::from_le_bytes(b) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn attackers_from(feed: &str, rng: &mut Rng, own: &[Cidr]) -> Vec<IpAddr> {
    let (entries, _) = parse_netset(feed);
    let mut out = Vec::new();
    for _ in 0..2000 {
        if entries.is_empty() || out.len() >= 60 {
            break;
        }
        let c = rng.pick(&entries);
        let ip = c.nth(rng.next());
        if ip.is_ipv4() && !is_non_internet(ip) && !own.iter().any(|o| o.contains(ip)) {
            out.push(ip);
        }
    }
    if out.is_empty() {
        out = (1..60)
            .map(|i| IpAddr::V4(Ipv4Addr::new(203, 0, 113, i)))
            .collect();
    }
    out
}

struct Sim {
    rng: Rng,
    transport: Transport,
    host: &'static str,
    target: IpAddr,
    attackers: Vec<IpAddr>,
    scanner: IpAddr,
    scan_port: u16,
    seq: u64,
}

const NOISE_PORTS: &[u16] = &[
    23, 22, 445, 3389, 8080, 1433, 5900, 21, 25, 3306, 6379, 8443, 5060,
];
const ALLOWED_LISTED_PORTS: &[u16] = &[3389, 22, 443];

impl Sim {
    fn unlisted(&mut self) -> IpAddr {
        // 198.18.0.0/15 (benchmarking range) stands in for ordinary internet hosts.
        let n = self.rng.below(1 << 17) as u32;
        IpAddr::V4(Ipv4Addr::from(0xc612_0000u32 + n))
    }

    fn internal(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10 + self.rng.below(100) as u8))
    }

    /// One line of the given kind.
    fn line(&mut self, kind: u64) -> String {
        let (src, dst, dport, allow, inbound) = match kind {
            // A scanner from a listed address walks the ports, blocked.
            0..=44 => {
                if self.rng.below(40) == 0 {
                    self.scanner = *self.rng.pick(&self.attackers);
                }
                self.scan_port = self
                    .scan_port
                    .wrapping_add(1 + self.rng.below(7) as u16)
                    .max(1);
                (self.scanner, self.target, self.scan_port, false, true)
            }
            // Background noise from unlisted addresses, blocked.
            45..=69 => {
                let p = *self.rng.pick(NOISE_PORTS);
                (self.unlisted(), self.target, p, false, true)
            }
            // Ordinary visitors to the website, allowed.
            70..=81 => {
                let p = if self.rng.below(4) == 0 { 80 } else { 443 };
                (self.unlisted(), self.target, p, true, true)
            }
            // Internal traffic: must never leave the member's network.
            82..=89 => {
                let (a, b) = (self.internal(), self.internal());
                (a, b, 445, self.rng.below(2) == 0, false)
            }
            // Outbound browsing: not sent unless the member opts in.
            90..=94 => {
                let a = self.internal();
                (a, self.unlisted(), 443, true, false)
            }
            // Rarely, an infected device calls a listed server: reported despite no outbound opt-in.
            95 if self.rng.below(25) == 0 => {
                let a = self.internal();
                (a, *self.rng.pick(&self.attackers), 443, true, false)
            }
            // A listed address the firewall let through: the alarm must go off.
            95..=97 => {
                let p = *self.rng.pick(ALLOWED_LISTED_PORTS);
                (*self.rng.pick(&self.attackers), self.target, p, true, true)
            }
            // The opening's infected device.
            200 => {
                let a = self.internal();
                (a, *self.rng.pick(&self.attackers), 443, true, false)
            }
            // Something no parser understands.
            _ => {
                return match self.rng.below(3) {
                    0 => format!("<13>{} {} sshd[811]: Accepted publickey for backup from 192.168.1.5", bsd_now(), self.host),
                    1 => format!("<4>{} {} kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.999 DST={} PROTO=TCP SPT=1 DPT=22", bsd_now(), self.host, self.target),
                    _ => "\u{1b}[31mnot a log line at all".to_string(),
                };
            }
        };
        let sport = 1024 + self.rng.below(60_000) as u16;
        let udp = dport == 5060 || self.rng.below(20) == 0;
        self.seq += 1;
        match self.transport {
            Transport::TcpCountedFilterlog => {
                let (proto, tail) = if udp {
                    ("17,udp,48", format!("{sport},{dport},28"))
                } else {
                    (
                        "6,tcp,60",
                        format!(
                            "{sport},{dport},0,S,{},,64240,,mss;sackOK;TS;nop;wscale",
                            self.rng.next() as u32
                        ),
                    )
                };
                format!(
                    "<134>1 {} {} filterlog 92653 - [meta sequenceId=\"{}\"] {},,,{},{},match,{},{},4,0x0,,{},{},0,DF,{},{},{},{}",
                    jiff::Timestamp::now(),
                    self.host,
                    self.seq,
                    if allow { 100 } else { 7 },
                    if allow { "1000000103" } else { "1000000102" },
                    if inbound { "igb0" } else { "igb1" },
                    if allow { "pass" } else { "block" },
                    if inbound { "in" } else { "out" },
                    40 + self.rng.below(200),
                    self.rng.below(65_535),
                    proto,
                    src,
                    dst,
                    tail
                )
            }
            Transport::UdpIptables | Transport::TcpLineUfw => {
                let prefix = match (self.transport, allow) {
                    (Transport::TcpLineUfw, true) => "[UFW ALLOW]",
                    (Transport::TcpLineUfw, false) => "[UFW BLOCK]",
                    (_, true) => "IPTABLES-ACCEPT:",
                    (_, false) => "IPTABLES-DROP:",
                };
                let ifaces = if inbound {
                    "IN=eth0 OUT="
                } else {
                    "IN=eth1 OUT=eth0"
                };
                let proto = if udp {
                    format!("PROTO=UDP SPT={sport} DPT={dport} LEN=28")
                } else {
                    format!("PROTO=TCP SPT={sport} DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0")
                };
                format!(
                    "<4>{} {} kernel: [{}.{:06}] {prefix} {ifaces} MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL={} ID={} {proto}",
                    bsd_now(),
                    self.host,
                    100_000 + self.seq / 10,
                    self.rng.below(1_000_000),
                    30 + self.rng.below(200),
                    self.rng.below(65_535),
                )
            }
        }
    }
}

fn bsd_now() -> String {
    jiff::Timestamp::now()
        .strftime("%b %e %H:%M:%S")
        .to_string()
}

async fn simulate(
    mut sim: Sim,
    udp: SocketAddr,
    tcp: SocketAddr,
    rate: u32,
    mut stop: watch::Receiver<bool>,
) {
    let sock = match tokio::net::UdpSocket::bind("127.0.0.1:0").await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "simulator cannot open a UDP socket");
            return;
        }
    };
    let mut stream: Option<tokio::net::TcpStream> = None;
    let per_tick = (rate as f64 / 10.0).max(0.1);
    let mut credit = 0.0;
    // Start with what the demo is for: a blocked scan and a listed address let through; and, at
    // one member, once its collector has had time to fetch the watchlist, a device calling a
    // known criminal server.
    let mut opening = vec![10u64, 96];
    let mut ticks = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        credit += per_tick;
        ticks += 1;
        if ticks == 30 && sim.transport == Transport::UdpIptables {
            opening.push(200);
        }
        while credit >= 1.0 || !opening.is_empty() {
            let kind = opening.pop().unwrap_or_else(|| sim.rng.below(100));
            if credit >= 1.0 {
                credit -= 1.0;
            }
            let line = sim.line(kind);
            let sent = match sim.transport {
                Transport::UdpIptables => sock.send_to(line.as_bytes(), udp).await.map(|_| ()),
                Transport::TcpCountedFilterlog | Transport::TcpLineUfw => {
                    if stream.is_none() {
                        stream = tokio::net::TcpStream::connect(tcp).await.ok();
                    }
                    match stream.as_mut() {
                        Some(s) => {
                            let framed = if sim.transport == Transport::TcpCountedFilterlog {
                                format!("{} {line}", line.len())
                            } else {
                                format!("{line}\n")
                            };
                            s.write_all(framed.as_bytes()).await
                        }
                        None => Err(std::io::Error::other("not connected")),
                    }
                }
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "simulator send failed; reconnecting");
                stream = None;
            }
        }
    }
}

fn print_banner(url: &str, users: &[DemoUser], members: &[Member]) {
    println!();
    println!("  Watchhouse demo is running at {url}");
    println!();
    println!("  Sign in as any of these (passwords are new at every start):");
    for u in users {
        println!("    {:<30} {:<24} {}", u.email, u.password, u.role);
    }
    println!();
    println!("  Members:");
    for m in members {
        println!("    {url}/members/{:<4} {}", m.id, m.name);
    }
    println!();
    println!("  Alerts appear within seconds. Press Ctrl-C to stop.");
    println!();
}

fn wipe_dir(p: &Path) {
    if p.exists() {
        if let Err(e) = std::fs::remove_dir_all(p) {
            tracing::warn!(path = %p.display(), error = %e, "cannot clear old demo collectors");
        }
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs, mut cfg: Config) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    cfg.hub.data_dir = args.data_dir.clone();
    cfg.hub.listen = args.listen.clone();
    cfg.hub.upload_interval_ms = 1_000;
    let feed_path = match &args.feed {
        Some(p) => p.clone(),
        None => {
            let p = args.data_dir.join("demo-feed.netset");
            std::fs::write(&p, DEMO_FEED)
                .with_context(|| format!("cannot write {}", p.display()))?;
            p
        }
    };
    let feed_text = std::fs::read_to_string(&feed_path)
        .with_context(|| format!("cannot read the feed {}", feed_path.display()))?;
    let mut feed = watchhouse_hub::FeedConfig::file(
        feed_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "demo".into()),
        &feed_path,
    );
    feed.category = "attacks".into();
    feed.provenance = "Watchhouse demo".into();
    feed.share = true;
    feed.blocklist = true;
    feed.expiry_days = 0;
    cfg.hub.feeds = vec![feed];

    let (state, feeds) = crate::hub_state(&cfg.hub).await?;
    let (force_ids, members, fresh) = seed(state.store.as_ref()).await?;
    let users = seed_users(state.store.as_ref(), &force_ids, &members).await?;
    let collectors_dir = args.data_dir.join("collectors");
    if fresh {
        wipe_dir(&collectors_dir);
    }

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is something else using it? try --listen 127.0.0.1:0)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let hub_url = format!("http://127.0.0.1:{}", addr.port());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut hub_stop = stop_rx.clone();
    let hub = tokio::spawn(watchhouse_hub::serve(listener, state.clone(), async move {
        let _ = hub_stop.changed().await;
    }));
    let watcher = tokio::spawn(watchhouse_hub::intel::feeds::run(state.clone(), feeds));
    let notifier = tokio::spawn(watchhouse_hub::notify::run(state.clone()));

    let mut running = Vec::new();
    let mut sims = Vec::new();
    let mut collectors = Vec::new();
    for (i, (name, _, net, public, transport)) in MEMBERS.iter().enumerate() {
        let m = &members[i];
        let dir = collectors_dir.join(format!("member-{}", m.id));
        let mut c = cfg.collector.clone();
        c.hub_url = hub_url.clone();
        c.data_dir = dir.clone();
        c.name = format!("{name} firewall");
        c.udp_listen = vec!["127.0.0.1:0".into()];
        c.tcp_listen = vec!["127.0.0.1:0".into()];
        c.files = vec![];
        c.upload_interval_ms = 1_000;
        if !dir.join("credential.json").exists() {
            let token = format!("whe_{}", watchhouse_hub::auth::random_token());
            let now = watchhouse_hub::now_ms();
            state
                .store
                .create_enrolment_token(
                    m.id,
                    &watchhouse_hub::auth::hash_secret(&token),
                    now,
                    now + 3_600_000,
                )
                .await?;
            c.enrolment_token = token;
        }
        let r = watchhouse_collector::start(c)
            .await
            .with_context(|| format!("cannot start the collector for {name}"))?;
        let mut rng = Rng::new();
        let own: Vec<Cidr> = net.parse().into_iter().collect();
        let attackers = attackers_from(&feed_text, &mut rng, &own);
        let sim = Sim {
            scanner: attackers[0],
            rng,
            transport: *transport,
            host: ["fw-riverside", "pfsense-harbour", "oakfield-gw"][i],
            target: public.parse().context("demo member address")?,
            attackers,
            scan_port: 20,
            seq: 0,
        };
        sims.push(tokio::spawn(simulate(
            sim,
            r.udp_addrs[0],
            r.tcp_addrs[0],
            args.rate,
            stop_rx.clone(),
        )));
        collectors.push(DemoCollector {
            member_id: m.id,
            udp: r.udp_addrs[0].to_string(),
            tcp: r.tcp_addrs[0].to_string(),
            target: public.to_string(),
        });
        running.push(r);
    }

    let url = format!("http://{addr}");
    if let Some(p) = &args.credentials_file {
        let creds = Credentials {
            url: url.clone(),
            users,
            members: members.clone(),
            collectors,
        };
        std::fs::write(p, serde_json::to_vec_pretty(&creds)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        print_banner(&url, &creds.users, &members);
    } else {
        print_banner(&url, &users, &members);
    }
    tracing::info!(%url, "demo running");

    crate::shutdown_signal().await;
    tracing::info!("stopping the demo");
    let _ = stop_tx.send(true);
    for s in sims {
        let _ = s.await;
    }
    for r in running {
        r.stop(Duration::from_secs(3)).await;
    }
    watcher.abort();
    notifier.abort();
    let _ = hub.await;
    tracing::info!("demo stopped");
    Ok(())
}
