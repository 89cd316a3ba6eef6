//! `watchhouse admin`: forces, members, users, enrolment tokens and collectors, working directly
//! on the hub's database (run it on the hub's machine, as the hub's user).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use watchhouse_store::{Id, NewUser, Role, Scope, Store};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Data directory of the hub (overrides hub.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (overrides hub.database).
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Police forces.
    #[command(subcommand)]
    Force(ForceCmd),
    /// Member organisations.
    #[command(subcommand)]
    Member(MemberCmd),
    /// People who sign in.
    #[command(subcommand)]
    User(UserCmd),
    /// One-time collector enrolment tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Enrolled collectors.
    #[command(subcommand)]
    Collector(CollectorCmd),
    /// Sharing partners (TAXII, STIX and MISP exports): accounts with a TLP ceiling.
    #[command(subcommand)]
    Partner(PartnerCmd),
    /// Bearer tokens for machine clients (TAXII clients, firewalls fetching blocklists).
    #[command(subcommand)]
    ApiToken(ApiTokenCmd),
}

#[derive(Debug, Subcommand)]
enum PartnerCmd {
    /// Add a partner account (another police service, a CERT, an ISAC). Prints a generated
    /// password unless --password-stdin is given; use it with HTTP Basic, or create a token.
    Add {
        /// Email address (sign-in name).
        #[arg(long)]
        email: String,
        /// Organisation name.
        #[arg(long)]
        name: String,
        /// The most restricted TLP it may receive: clear, green or amber (TLP:RED never leaves).
        #[arg(long, default_value = "green")]
        max_tlp: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ApiTokenCmd {
    /// Create a bearer token for an account. Prints it once.
    Create {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// What it is for, e.g. "OpenCTI connector".
        #[arg(long, default_value = "api")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ForceCmd {
    /// Add a force.
    Add {
        /// Name, e.g. "Northshire Police".
        #[arg(long)]
        name: String,
        /// Region, e.g. "North West".
        #[arg(long)]
        region: String,
    },
    /// List forces.
    List,
}

#[derive(Debug, Subcommand)]
enum MemberCmd {
    /// Add a member organisation to a force.
    Add {
        /// The force's id.
        #[arg(long)]
        force: Id,
        /// Name.
        #[arg(long)]
        name: String,
        /// The member's own internet-facing network (CIDR), repeatable.
        #[arg(long = "network", value_name = "CIDR")]
        networks: Vec<String>,
        /// The member agrees to send outbound traffic.
        #[arg(long)]
        send_outbound: bool,
    },
    /// List members.
    List {
        /// Only this force's members.
        #[arg(long)]
        force: Option<Id>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Add a user. Prints a generated password unless --password-stdin is given.
    Add {
        /// Email address (sign-in name).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// member_viewer, member_admin, msp, force_officer, analyst, admin or partner.
        #[arg(long)]
        role: String,
        /// Member id (member users: one; msp: repeatable).
        #[arg(long = "member")]
        members: Vec<Id>,
        /// Force id (force officers).
        #[arg(long)]
        force: Option<Id>,
        /// Region (regional analysts; national analysts have none).
        #[arg(long)]
        region: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (ends their sessions). Prints a generated one unless --password-stdin.
    SetPassword {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a one-time enrolment token for a member's collector.
    Create {
        /// Member id.
        #[arg(long)]
        member: Id,
        /// Hours until it expires.
        #[arg(long, default_value_t = 72)]
        hours: u64,
    },
}

#[derive(Debug, Subcommand)]
enum CollectorCmd {
    /// List collectors.
    List {
        /// Only this member's.
        #[arg(long)]
        member: Option<Id>,
    },
    /// Revoke a collector: its credential stops working at once.
    Revoke {
        /// Collector id.
        id: Id,
    },
}

/// A random password that is easy to type: four groups of five lower-case letters and digits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    let chars: Vec<char> = b
        .iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn read_password(stdin: bool) -> Result<(String, bool)> {
    if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        let p = s.trim_end_matches(['\n', '\r']).to_owned();
        if p.chars().count() < 12 {
            bail!("the password must have at least 12 characters");
        }
        Ok((p, false))
    } else {
        Ok((generate_password(), true))
    }
}

fn now_ms() -> i64 {
    watchhouse_hub::now_ms()
}

/// Runs an admin command.
pub async fn run(args: AdminArgs, mut cfg: watchhouse_hub::HubConfig) -> Result<()> {
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(d) = args.database {
        cfg.database = d;
    }
    let store = watchhouse_store::open(&cfg.database_url())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                watchhouse_store::redact_url(&cfg.database_url())
            )
        })?;
    let s: &dyn Store = store.as_ref();
    let all = Scope::All;
    match args.what {
        What::Force(ForceCmd::Add { name, region }) => {
            let f = s.create_force(&name, &region).await?;
            println!("force {} created: {} ({})", f.id, f.name, f.region);
        }
        What::Force(ForceCmd::List) => {
            for f in s.list_forces(&all).await? {
                println!("{}\t{}\t{}", f.id, f.name, f.region);
            }
        }
        What::Member(MemberCmd::Add {
            force,
            name,
            networks,
            send_outbound,
        }) => {
            for n in &networks {
                n.parse::<watchhouse_intel::Cidr>()
                    .map_err(|e| anyhow::anyhow!("--network {n}: {e}"))?;
            }
            let m = s
                .create_member(force, &name, &networks, send_outbound)
                .await?;
            println!("member {} created: {} (force {})", m.id, m.name, m.force_id);
        }
        What::Member(MemberCmd::List { force }) => {
            let scope = force.map(Scope::Force).unwrap_or(Scope::All);
            for m in s.list_members(&scope).await? {
                println!(
                    "{}\t{}\tforce {}\t{}",
                    m.id,
                    m.name,
                    m.force_id,
                    m.networks.join(",")
                );
            }
        }
        What::User(UserCmd::Add {
            email,
            name,
            role,
            members,
            force,
            region,
            password_stdin,
        }) => {
            let role = Role::from_name(&role).with_context(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{role}`: use one of {}", names.join(", "))
            })?;
            let (password, generated) = read_password(password_stdin)?;
            let u = s
                .create_user(NewUser {
                    email,
                    name,
                    password_hash: watchhouse_hub::auth::hash_password(&password),
                    role,
                    force_id: force,
                    region,
                    member_ids: members,
                    max_tlp: (role == Role::Partner).then_some(watchhouse_intel::Tlp::Green),
                })
                .await?;
            println!("user {} created: {} ({})", u.id, u.email, u.role.as_str());
            if generated {
                println!("password: {password}\n(shown once: give it to the user securely)");
            }
        }
        What::User(UserCmd::SetPassword {
            email,
            password_stdin,
        }) => {
            let (password, generated) = read_password(password_stdin)?;
            s.set_password(&email, &watchhouse_hub::auth::hash_password(&password))
                .await?;
            println!("password changed for {email}; their sessions have ended");
            if generated {
                println!("password: {password}");
            }
        }
        What::User(UserCmd::List) => {
            for u in s.list_users(&all).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.id,
                    u.email,
                    u.role.as_str(),
                    u.member_ids
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        What::Partner(PartnerCmd::Add {
            email,
            name,
            max_tlp,
            password_stdin,
        }) => {
            let tlp = watchhouse_intel::Tlp::from_name(&max_tlp)
                .filter(|t| *t <= watchhouse_intel::Tlp::Amber)
                .with_context(|| format!("--max-tlp {max_tlp}: use clear, green or amber"))?;
            let (password, generated) = read_password(password_stdin)?;
            let u = s
                .create_user(NewUser {
                    email,
                    name,
                    password_hash: watchhouse_hub::auth::hash_password(&password),
                    role: Role::Partner,
                    force_id: None,
                    region: None,
                    member_ids: vec![],
                    max_tlp: Some(tlp),
                })
                .await?;
            println!("partner {} created: {} (up to {tlp})", u.id, u.email);
            println!(
                "TAXII discovery: <hub URL>/taxii2/  (HTTP Basic with this email and password)"
            );
            if generated {
                println!("password: {password}\n(shown once: give it to the partner securely)");
            }
        }
        What::ApiToken(ApiTokenCmd::Create { email, name }) => {
            let Some((u, _)) = s.user_for_login(&email).await? else {
                bail!("no enabled account {email}: see `watchhouse admin user list`");
            };
            let token = format!("wht_{}", watchhouse_hub::auth::random_token());
            s.create_api_token(u.id, &watchhouse_hub::auth::hash_secret(&token), &name)
                .await?;
            println!("token for {} ({}): {token}", u.email, u.role.as_str());
            println!("(shown once; send it as `Authorization: Bearer <token>`)");
        }
        What::Token(TokenCmd::Create { member, hours }) => {
            if s.get_member(&all, member).await?.is_none() {
                bail!("no member {member}: see `watchhouse admin member list`");
            }
            let token = format!("whe_{}", watchhouse_hub::auth::random_token());
            let now = now_ms();
            s.create_enrolment_token(
                member,
                &watchhouse_hub::auth::hash_secret(&token),
                now,
                now + hours as i64 * 3_600_000,
            )
            .await?;
            println!("{token}");
            eprintln!(
                "one-time enrolment token for member {member}, valid {hours} hours:\n  watchhouse collect --hub URL --enrol-token {token}"
            );
        }
        What::Collector(CollectorCmd::List { member }) => {
            for c in s.list_collectors(&all, member).await? {
                println!(
                    "{}\tmember {}\t{}\t{}\tlast seen {}",
                    c.id,
                    c.member_id,
                    c.name,
                    if c.revoked { "revoked" } else { "active" },
                    c.last_seen_ms
                        .map(watchhouse_web_time)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        What::Collector(CollectorCmd::Revoke { id }) => {
            if s.revoke_collector(&all, id).await? {
                println!("collector {id} revoked");
            } else {
                bail!("no active collector {id}");
            }
        }
    }
    Ok(())
}

fn watchhouse_web_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = super::generate_password();
        assert_eq!(a.len(), 23);
        assert_ne!(a, super::generate_password());
    }
}
