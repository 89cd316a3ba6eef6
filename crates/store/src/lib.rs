//! Storage: the [`Store`] trait every backend implements, and the embedded SQLite backend.
//!
//! **Invariant: every read of member data takes a [`Scope`].** The scope is derived from the
//! signed-in user (or the authenticated collector) and is applied inside the query, so a caller
//! cannot forget it: there is no method that returns events, alerts, collectors or members
//! without one. Out-of-scope rows are indistinguishable from missing rows (`None` / empty).
//!
//! **Invariant: a batch is stored at most once per collector.** [`Store::ingest`] records the
//! batch id, the events, their rollups and the resulting alerts in one transaction; a batch id
//! already recorded for that collector stores nothing and reports a duplicate.
//!
//! Backends are chosen by URL ([`open`]): `sqlite://PATH` (the embedded default) or
//! `postgres://…` (scale-out, shared by several hub processes). Both run the same conformance
//! suite (`tests/conformance.rs`).

use std::collections::HashMap;
use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use watchhouse_detect::ObservedLabel;
use watchhouse_detect::{AlertKind, Observation, Severity};
use watchhouse_event::Event;
use watchhouse_intel::{IndicatorValue, Tlp};
use watchhouse_proto::{Batch, CollectorStats};

pub mod block;
pub mod postgres;
pub mod sqlite;
pub mod srcblock;

/// Row id.
pub type Id = i64;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. a second force with the same name).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request was invalid for the data (e.g. a member role without a member).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The backend failed.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A backend failure, for `map_err`.
pub(crate) fn be(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Milliseconds since the epoch, for rows' creation times.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A role. Stable names are used in the database, the CLI and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads one member's data.
    MemberViewer,
    /// Reads and manages one member (collectors, enrolment tokens).
    MemberAdmin,
    /// Managed-service provider: reads several members.
    Msp,
    /// Force Cyber Protect officer: the members of one force.
    ForceOfficer,
    /// Regional (with a region) or national (without) analyst.
    Analyst,
    /// Everything, including user management.
    Admin,
    /// A sharing partner (another police service, a CERT, an ISAC): reads shared intelligence
    /// through TAXII within its TLP ceiling; never member data.
    Partner,
}

impl Role {
    /// Every role.
    pub const ALL: &'static [Role] = &[
        Role::MemberViewer,
        Role::MemberAdmin,
        Role::Msp,
        Role::ForceOfficer,
        Role::Analyst,
        Role::Admin,
        Role::Partner,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::MemberViewer => "member_viewer",
            Role::MemberAdmin => "member_admin",
            Role::Msp => "msp",
            Role::ForceOfficer => "force_officer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Partner => "partner",
        }
    }

    /// Parses [`Role::as_str`].
    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Roles that belong to member organisations rather than to policing.
    pub fn is_member_side(self) -> bool {
        matches!(self, Role::MemberViewer | Role::MemberAdmin | Role::Msp)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Role::MemberViewer => "Member (view)",
            Role::MemberAdmin => "Member administrator",
            Role::Msp => "Managed service provider",
            Role::ForceOfficer => "Force Cyber Protect officer",
            Role::Analyst => "Analyst",
            Role::Admin => "Administrator",
            Role::Partner => "Sharing partner",
        }
    }
}

/// Which members' data a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (administrator, national analyst).
    All,
    /// Members of forces in one region (regional analyst).
    Region(String),
    /// Members of one force (force officer).
    Force(Id),
    /// These members only (member users, MSPs, a collector).
    Members(Vec<Id>),
}

impl Scope {
    /// The scope a user's role gives them.
    pub fn for_user(u: &User) -> Scope {
        match u.role {
            Role::Admin => Scope::All,
            Role::Analyst => match &u.region {
                Some(r) => Scope::Region(r.clone()),
                None => Scope::All,
            },
            Role::ForceOfficer => match u.force_id {
                Some(f) => Scope::Force(f),
                None => Scope::Members(vec![]),
            },
            Role::MemberViewer | Role::MemberAdmin | Role::Msp => {
                Scope::Members(u.member_ids.clone())
            }
            // Partners see shared intelligence only, never member data.
            Role::Partner => Scope::Members(vec![]),
        }
    }
}

impl Scope {
    /// Whether a user account is visible in this scope (user lists for administrators, force
    /// officers, regional analysts and member administrators).
    pub fn sees_user(&self, u: &User) -> bool {
        match self {
            Scope::All => true,
            Scope::Force(f) => u.force_id == Some(*f),
            Scope::Region(r) => u.region.as_deref() == Some(r.as_str()),
            Scope::Members(ms) => {
                !u.member_ids.is_empty() && u.member_ids.iter().all(|m| ms.contains(m))
            }
        }
    }
}

/// A police force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Force {
    /// Id.
    pub id: Id,
    /// Name, unique.
    pub name: String,
    /// Region (e.g. "North West").
    pub region: String,
}

/// A member organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Id.
    pub id: Id,
    /// The force whose area it is in.
    pub force_id: Id,
    /// Name.
    pub name: String,
    /// Its own networks (CIDRs) besides the private ranges.
    pub networks: Vec<String>,
    /// Opted in to sending outbound traffic.
    pub send_outbound: bool,
}

/// A user (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: Id,
    /// Email, used to sign in; unique, case-insensitive.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Force (force officers).
    pub force_id: Option<Id>,
    /// Region (regional analysts).
    pub region: Option<String>,
    /// Members (member users: one; MSPs: several).
    pub member_ids: Vec<Id>,
    /// The most restricted TLP a sharing partner may receive (partners only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tlp: Option<Tlp>,
}

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// An argon2id PHC string; the store never sees passwords.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Force, for force officers.
    pub force_id: Option<Id>,
    /// Region, for regional analysts.
    pub region: Option<String>,
    /// Members, for member users and MSPs.
    pub member_ids: Vec<Id>,
    /// TLP ceiling, for sharing partners.
    pub max_tlp: Option<Tlp>,
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The CSRF token bound to this session.
    pub csrf: String,
    /// Expiry.
    pub expires_ms: i64,
}

/// An enrolled collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collector {
    /// Id.
    pub id: Id,
    /// Member it reports for.
    pub member_id: Id,
    /// Name given at enrolment.
    pub name: String,
    /// Revoked collectors are refused.
    pub revoked: bool,
    /// Last successful contact.
    pub last_seen_ms: Option<i64>,
    /// Software version last reported.
    pub version: Option<String>,
    /// Last reported health.
    pub stats: Option<CollectorStats>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Id.
    pub id: Id,
    /// Member.
    pub member_id: Id,
    /// Collector that sent it.
    pub collector_id: Id,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Alert workflow status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Not yet looked at.
    New,
    /// Someone is on it.
    Acknowledged,
    /// Done.
    Resolved,
}

impl AlertStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::New => "new",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    /// Parses [`AlertStatus::as_str`].
    pub fn from_name(s: &str) -> Option<AlertStatus> {
        Some(match s {
            "new" => AlertStatus::New,
            "acknowledged" => AlertStatus::Acknowledged,
            "resolved" => AlertStatus::Resolved,
            _ => return None,
        })
    }
}

/// What a member says about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    /// The traffic is expected (their own scanner, a supplier): repeats are not alerted.
    Expected,
    /// The alert is wrong: repeats are not alerted, and intelligence disputed by several
    /// members loses confidence.
    FalsePositive,
    /// The member confirms it was hostile.
    Confirmed,
}

impl Feedback {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Feedback::Expected => "expected",
            Feedback::FalsePositive => "false_positive",
            Feedback::Confirmed => "confirmed",
        }
    }

    /// Parses [`Feedback::as_str`].
    pub fn from_name(s: &str) -> Option<Feedback> {
        Some(match s {
            "expected" => Feedback::Expected,
            "false_positive" => Feedback::FalsePositive,
            "confirmed" => Feedback::Confirmed,
            _ => return None,
        })
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Feedback::Expected => "Expected traffic",
            Feedback::FalsePositive => "False alarm",
            Feedback::Confirmed => "Confirmed hostile",
        }
    }
}

/// A member's answer to an alert, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackEntry {
    /// The answer.
    pub feedback: Feedback,
    /// Their words.
    pub note: String,
    /// Who answered (email).
    pub by: String,
    /// When.
    pub now_ms: i64,
    /// Repeats are held back until then (for `Expected` and `FalsePositive`).
    pub suppress_until_ms: i64,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Id.
    pub id: Id,
    /// Member.
    pub member_id: Id,
    /// Member name, for lists that span members.
    pub member_name: String,
    /// Detection.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// The address it is about.
    pub subject_ip: IpAddr,
    /// Lists that matched.
    pub lists: Vec<String>,
    /// Why the lists have it (category, confidence, TLP per feed).
    pub labels: Vec<ObservedLabel>,
    /// Destination ports seen (distinct, at most [`MAX_ALERT_PORTS`]).
    pub ports: Vec<u16>,
    /// Events behind it (sum of event counts).
    pub event_count: u64,
    /// First event time.
    pub first_seen_ms: i64,
    /// Last event time.
    pub last_seen_ms: i64,
    /// Status.
    pub status: AlertStatus,
    /// The member's feedback, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// Most distinct ports kept on an alert.
pub const MAX_ALERT_PORTS: usize = 32;
/// Most evidence events linked to one alert.
pub const MAX_ALERT_EVIDENCE: usize = 50;

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// Events stored (on a duplicate: the number stored the first time).
    pub accepted: u64,
    /// The batch had been stored before; nothing was written.
    pub duplicate: bool,
    /// Kinds of alerts newly created by this batch, one entry per alert.
    pub alerts_created: Vec<AlertKind>,
    /// Alerts that grew.
    pub alerts_updated: u64,
}

/// Per-day counts for a chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Events the firewall blocked.
    pub blocked: u64,
    /// Events the firewall allowed.
    pub allowed: u64,
}

/// A ranked item in a "top" list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopItem {
    /// The source address, or `proto/port`.
    pub key: String,
    /// Events.
    pub events: u64,
}

/// "Evidence of need" figures for an area and a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Members in scope.
    pub members: u64,
    /// Members whose collectors sent events in the period.
    pub members_reporting: u64,
    /// Firewall events recorded (the sum of counts).
    pub events: u64,
    /// Members with at least one alert.
    pub members_affected: u64,
    /// Alerts raised, by severity name.
    pub alerts_by_severity: std::collections::BTreeMap<String, u64>,
    /// Alerts raised, by kind name.
    pub alerts_by_kind: std::collections::BTreeMap<String, u64>,
    /// Alerts someone acted on (acknowledged, resolved or answered).
    pub alerts_acted_on: u64,
    /// Median time from an alert to the last action on it, in minutes (alerts acted on).
    pub median_minutes_to_act: Option<f64>,
    /// Open high and critical alerts.
    pub open_urgent: u64,
}

/// A member's webhook for urgent alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Id.
    pub id: Id,
    /// Member.
    pub member_id: Id,
    /// Where alerts are POSTed.
    pub url: String,
    /// The HMAC key (never shown again after creation).
    #[serde(skip_serializing)]
    pub secret: String,
    /// When it was added.
    pub created_ms: i64,
}

/// An indicator entered by an analyst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIndicator {
    /// Id.
    pub id: Id,
    /// The address, block, domain or URL.
    pub value: IndicatorValue,
    /// Category, e.g. `botnet_c2`.
    pub category: String,
    /// 0–100.
    pub confidence: u8,
    /// Sharing restriction.
    pub tlp: Tlp,
    /// No longer used after this time.
    pub valid_until_ms: Option<i64>,
    /// Free text.
    pub description: String,
    /// Email of the analyst who entered it.
    pub created_by: String,
    /// When it was entered.
    pub created_ms: i64,
    /// Last change (entry or revocation).
    pub modified_ms: i64,
    /// Withdrawn.
    pub revoked: bool,
}

/// A new analyst indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIndicator {
    /// The address, block, domain or URL.
    pub value: IndicatorValue,
    /// Category.
    pub category: String,
    /// 0–100.
    pub confidence: u8,
    /// Sharing restriction.
    pub tlp: Tlp,
    /// Expiry.
    pub valid_until_ms: Option<i64>,
    /// Free text.
    pub description: String,
    /// Email of the analyst.
    pub created_by: String,
}

/// An entry a member keeps out of its blocklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The address or block.
    pub cidr: String,
    /// Why (free text).
    pub note: String,
    /// When.
    pub created_ms: i64,
}

/// A source address seen at several members (aggregated; never names a member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSighting {
    /// The source.
    pub ip: IpAddr,
    /// Distinct members that saw it.
    pub members: u32,
    /// Events from it.
    pub events: u64,
    /// First day seen (days since the epoch).
    pub first_day: i64,
    /// Last day seen.
    pub last_day: i64,
}

/// An object a partner added through TAXII.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxiiObject {
    /// STIX id.
    pub id: String,
    /// Version (`modified`, or `created` for unversioned objects).
    pub version: String,
    /// When the hub added it, ms.
    pub added_ms: i64,
    /// The object.
    pub json: String,
}

/// Every storage operation the hub needs. Backends: [`sqlite::SqliteStore`],
/// [`postgres::PostgresStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- tenancy -------------------------------------------------------------------------
    /// Creates a force.
    async fn create_force(&self, name: &str, region: &str) -> Result<Force>;
    /// Forces visible in a scope.
    async fn list_forces(&self, scope: &Scope) -> Result<Vec<Force>>;
    /// Creates a member in a force.
    async fn create_member(
        &self,
        force_id: Id,
        name: &str,
        networks: &[String],
        send_outbound: bool,
    ) -> Result<Member>;
    /// Members visible in a scope.
    async fn list_members(&self, scope: &Scope) -> Result<Vec<Member>>;
    /// One member, if visible in the scope.
    async fn get_member(&self, scope: &Scope, id: Id) -> Result<Option<Member>>;
    /// Creates a user.
    async fn create_user(&self, u: NewUser) -> Result<User>;
    /// Sets a user's password hash.
    async fn set_password(&self, email: &str, password_hash: &str) -> Result<()>;
    /// A user and their password hash, for sign-in.
    async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>>;
    /// Users visible in a scope (admin: all).
    async fn list_users(&self, scope: &Scope) -> Result<Vec<User>>;

    // --- sessions ------------------------------------------------------------------------
    /// Records a session by the hash of its token.
    async fn create_session(
        &self,
        token_hash: &str,
        user_id: Id,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()>;
    /// The live session for a token hash.
    async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>>;
    /// Ends a session.
    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    // --- collectors ----------------------------------------------------------------------
    /// Records a one-time enrolment token (by hash) for a member.
    async fn create_enrolment_token(
        &self,
        member_id: Id,
        token_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()>;
    /// Atomically uses an unexpired, unused token and creates the collector.
    async fn redeem_enrolment_token(
        &self,
        token_hash: &str,
        name: &str,
        credential_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Collector>>;
    /// A collector by the hash of its credential, unless revoked.
    async fn collector_by_credential(&self, credential_hash: &str) -> Result<Option<Collector>>;
    /// Revokes a collector; its credential stops working at once.
    async fn revoke_collector(&self, scope: &Scope, id: Id) -> Result<bool>;
    /// Records a collector's heartbeat (contact time, version, health).
    async fn collector_heartbeat(
        &self,
        collector_id: Id,
        version: &str,
        stats: &CollectorStats,
        now_ms: i64,
    ) -> Result<()>;
    /// Collectors of the members in scope (optionally one member).
    async fn list_collectors(&self, scope: &Scope, member_id: Option<Id>)
        -> Result<Vec<Collector>>;

    // --- ingest --------------------------------------------------------------------------
    /// Stores a batch from a collector with the detections' observations, exactly once.
    /// `events` are the batch's accepted events (already validated), `observations` index into it.
    /// Both are taken by value: a backend that hands them to another thread moves them there
    /// instead of copying every event (`batch.events` is not read).
    async fn ingest(
        &self,
        collector: &Collector,
        batch: &Batch,
        events: Vec<Event>,
        observations: Vec<Observation>,
        dedup_window_ms: i64,
        now_ms: i64,
    ) -> Result<IngestOutcome>;

    /// Prepares storage for the days ahead (PostgreSQL: creates their event partitions now,
    /// so the first batch of a new day does not wait for the lock that creation takes).
    async fn prepare_days(&self, _first_day: i64, _last_day: i64) -> Result<()> {
        Ok(())
    }

    /// Retention: removes raw events of days before `before_day` (days since the epoch) and
    /// their links to alerts. Rollups and alerts stay, so reports still cover those days.
    async fn expire_events(&self, before_day: i64) -> Result<()>;

    // --- reads ---------------------------------------------------------------------------
    /// Most recent events of a member, newest first.
    async fn recent_events(
        &self,
        scope: &Scope,
        member_id: Id,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// Total events stored for a member (sum of counts).
    async fn event_total(&self, scope: &Scope, member_id: Id) -> Result<u64>;
    /// Alerts in scope, optionally for one member, most recent first.
    async fn alerts(&self, scope: &Scope, member_id: Option<Id>, limit: u32) -> Result<Vec<Alert>>;
    /// One alert and its evidence, if in scope.
    async fn alert(&self, scope: &Scope, id: Id) -> Result<Option<(Alert, Vec<StoredEvent>)>>;
    /// Sets an alert's status; false if not in scope.
    async fn set_alert_status(&self, scope: &Scope, id: Id, status: AlertStatus) -> Result<bool>;
    /// Daily blocked/allowed counts for a member over `[from_day, to_day]`.
    async fn daily_counts(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayCount>>;
    /// Top inbound sources since a day.
    async fn top_sources(
        &self,
        scope: &Scope,
        member_id: Id,
        since_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>>;
    /// Top targeted inbound ports since a day.
    async fn top_ports(
        &self,
        scope: &Scope,
        member_id: Id,
        since_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>>;

    /// Top inbound sources between two days (inclusive).
    async fn top_sources_between(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>>;
    /// Top targeted ports between two days (inclusive), keys as `proto/port`.
    async fn top_ports_between(
        &self,
        scope: &Scope,
        member_id: Id,
        from_day: i64,
        to_day: i64,
        n: u32,
    ) -> Result<Vec<TopItem>>;
    /// Events per member between two days (inclusive), every member: for comparisons with
    /// peers, never shown with names.
    async fn member_event_totals(&self, from_day: i64, to_day: i64) -> Result<Vec<(Id, u64)>>;

    /// "Evidence of need" figures for the members in `scope`, over `[from_ms, to_ms)`.
    async fn evidence(&self, scope: &Scope, from_ms: i64, to_ms: i64) -> Result<Evidence>;

    /// Records a member's feedback on an alert. `Expected` and `FalsePositive` also resolve it
    /// and hold back repeats of the same kind and address for that member until
    /// `suppress_until_ms`. False if the alert is out of scope or missing.
    async fn set_alert_feedback(&self, scope: &Scope, id: Id, f: FeedbackEntry) -> Result<bool>;
    /// Alerts with an id above `after_id`, oldest first, across all members (for the notifier,
    /// which decides who may see each).
    async fn alerts_after(&self, after_id: Id, limit: u32) -> Result<Vec<Alert>>;
    /// Alerts created in `[from_ms, to_ms)` within a scope, newest first.
    async fn alerts_created_between(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<Alert>>;
    /// A user's notification preferences: (urgent by email, daily digest).
    async fn notify_prefs(&self, user_id: Id) -> Result<(bool, bool)>;
    /// Sets a user's notification preferences.
    async fn set_notify_prefs(&self, user_id: Id, urgent: bool, digest: bool) -> Result<()>;
    /// Adds a webhook to a member; `None` if the member is out of scope.
    async fn add_webhook(
        &self,
        scope: &Scope,
        member_id: Id,
        url: &str,
        secret: &str,
    ) -> Result<Option<Webhook>>;
    /// A member's webhooks; `None` if the member is out of scope.
    async fn list_webhooks(&self, scope: &Scope, member_id: Id) -> Result<Option<Vec<Webhook>>>;
    /// Removes a webhook; false if absent or out of scope.
    async fn delete_webhook(&self, scope: &Scope, member_id: Id, id: Id) -> Result<bool>;
    /// A durable setting of a hub task.
    async fn kv_get(&self, key: &str) -> Result<Option<String>>;
    /// Sets a durable setting of a hub task.
    async fn kv_set(&self, key: &str, value: &str) -> Result<()>;
    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`; false while another
    /// holder's lease is unexpired. Background tasks that must run once per deployment
    /// (notifications, retention) run only in the process holding their lease.
    async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;
    /// Unexpired leases whose name starts with `prefix`: (name, holder), by name.
    async fn live_leases(&self, prefix: &str, now_ms: i64) -> Result<Vec<(String, String)>>;
    /// Addresses that at least `min_members` members called a false alarm (on alerts about
    /// listed addresses) since `since_ms`, with how many members did.
    async fn disputed_addresses(
        &self,
        since_ms: i64,
        min_members: u32,
    ) -> Result<Vec<(IpAddr, u32)>>;

    // --- intelligence ----------------------------------------------------------------------
    /// Adds an analyst indicator.
    async fn add_indicator(&self, i: NewIndicator) -> Result<StoredIndicator>;
    /// Analyst indicators, newest first; revoked ones only when asked.
    async fn list_indicators(&self, include_revoked: bool) -> Result<Vec<StoredIndicator>>;
    /// Revokes an analyst indicator; false if there is no such (unrevoked) indicator.
    async fn revoke_indicator(&self, id: Id, now_ms: i64) -> Result<bool>;
    /// Keeps an address or block out of a member's blocklist; false if the member is out of scope.
    async fn add_exclusion(
        &self,
        scope: &Scope,
        member_id: Id,
        cidr: &str,
        note: &str,
    ) -> Result<bool>;
    /// A member's exclusions; `None` if the member is out of scope.
    async fn list_exclusions(&self, scope: &Scope, member_id: Id)
        -> Result<Option<Vec<Exclusion>>>;
    /// Removes an exclusion; false if absent or out of scope.
    async fn delete_exclusion(&self, scope: &Scope, member_id: Id, cidr: &str) -> Result<bool>;
    /// Internet sources seen by at least `min_members` members since `since_day`, most
    /// widespread first. National aggregate: never says which members.
    async fn widespread_sources(
        &self,
        since_day: i64,
        min_members: u32,
        limit: u32,
    ) -> Result<Vec<SourceSighting>>;
    /// For each of `sources`, how many members other than `member_id` saw it (any event) on
    /// days from `since_day`; sources no other member saw are absent. Counts only, never which
    /// members: the campaign detection's view across every hub process.
    async fn source_reach(
        &self,
        member_id: Id,
        sources: &[IpAddr],
        since_day: i64,
    ) -> Result<HashMap<IpAddr, u32>>;
    /// Feeds added in the UI or API: (name, configuration JSON), by name.
    async fn list_feed_configs(&self) -> Result<Vec<(String, String)>>;
    /// Adds a feed configuration; `Conflict` if the name is taken.
    async fn add_feed_config(&self, name: &str, config_json: &str, created_by: &str) -> Result<()>;
    /// Removes a feed configuration; false if there was none.
    async fn delete_feed_config(&self, name: &str) -> Result<bool>;
    /// Stores a bearer token (its SHA-256) for a user.
    async fn create_api_token(&self, user_id: Id, token_hash: &str, name: &str) -> Result<()>;
    /// The (enabled) user a bearer token belongs to.
    async fn user_for_api_token(&self, token_hash: &str) -> Result<Option<User>>;
    /// Adds an object to a TAXII collection; false if that id and version were there already.
    async fn add_taxii_object(&self, collection: &str, o: TaxiiObject, user_id: Id)
        -> Result<bool>;
    /// Objects of a TAXII collection added after `after_ms`, oldest first.
    async fn taxii_objects(
        &self,
        collection: &str,
        after_ms: i64,
        limit: u32,
    ) -> Result<Vec<TaxiiObject>>;
    /// Saves a TAXII status resource.
    async fn put_taxii_status(&self, id: &str, user_id: Id, json: &str) -> Result<()>;
    /// A TAXII status resource, only for the user who created it.
    async fn taxii_status(&self, id: &str, user_id: Id) -> Result<Option<String>>;
}

/// Opens a store by URL: `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`
/// (the database must exist); migrations are applied either way.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let s = sqlite::SqliteStore::open(std::path::Path::new(path)).await?;
        return Ok(std::sync::Arc::new(s));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let s = postgres::PostgresStore::open(url).await?;
        return Ok(std::sync::Arc::new(s));
    }
    Err(StoreError::Invalid(format!(
        "unsupported database URL `{url}`: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
    )))
}

/// One alert's share of a batch: the batch's observations with one deduplication key, folded,
/// so a backend touches each alert once per batch instead of once per event.
#[derive(Debug, Clone)]
pub struct AlertDelta<'a> {
    /// The first observation (kind, severity, key and subject of the alert).
    pub first: &'a Observation,
    /// Lists that matched.
    pub lists: std::collections::BTreeSet<String>,
    /// Why they list it.
    pub labels: Vec<ObservedLabel>,
    /// Distinct destination ports, in order of appearance, at most [`MAX_ALERT_PORTS`].
    pub ports: Vec<u16>,
    /// Firewall events behind it (sum of counts).
    pub events: i64,
    /// Earliest event time.
    pub first_ms: i64,
    /// Latest event time (`last_ms` of aggregated records).
    pub last_ms: i64,
    /// Events to link as evidence, at most [`MAX_ALERT_EVIDENCE`].
    pub event_indices: Vec<usize>,
    /// Observations folded in.
    pub observations: u64,
}

/// Folds observations by deduplication key, in order of first appearance.
pub fn fold_observations<'a>(
    events: &[Event],
    observations: impl IntoIterator<Item = &'a Observation>,
) -> Result<Vec<AlertDelta<'a>>> {
    let mut out: Vec<AlertDelta<'a>> = Vec::new();
    let mut index: std::collections::HashMap<&'a str, usize> = std::collections::HashMap::new();
    for o in observations {
        let e = events
            .get(o.event_index)
            .ok_or_else(|| StoreError::Invalid("observation refers to no event".into()))?;
        let i = *index.entry(o.dedup_key.as_str()).or_insert_with(|| {
            out.push(AlertDelta {
                first: o,
                lists: Default::default(),
                labels: Vec::new(),
                ports: Vec::new(),
                events: 0,
                first_ms: e.time_ms,
                last_ms: e.time_ms,
                event_indices: Vec::new(),
                observations: 0,
            });
            out.len() - 1
        });
        let d = &mut out[i];
        d.lists.extend(o.lists.iter().cloned());
        watchhouse_detect::merge_labels(&mut d.labels, &o.labels);
        if let Some(p) = e.dst_port {
            if d.ports.len() < MAX_ALERT_PORTS && !d.ports.contains(&p) {
                d.ports.push(p);
            }
        }
        d.events += e.count.max(1) as i64;
        d.first_ms = d.first_ms.min(e.time_ms);
        d.last_ms = d.last_ms.max(e.last_ms.max(e.time_ms));
        if d.event_indices.len() < MAX_ALERT_EVIDENCE && !d.event_indices.contains(&o.event_index) {
            d.event_indices.push(o.event_index);
        }
        d.observations += 1;
    }
    Ok(out)
}

/// Checks a new user's email and that the role has what it needs.
pub(crate) fn validate_new_user(u: &NewUser) -> Result<()> {
    let email = u.email.trim();
    if email.is_empty() || !email.contains('@') || email.len() > 254 {
        return Err(StoreError::Invalid(format!(
            "`{email}` is not an email address"
        )));
    }
    match u.role {
        Role::MemberViewer | Role::MemberAdmin if u.member_ids.len() != 1 => Err(
            StoreError::Invalid("a member user belongs to exactly one member".into()),
        ),
        Role::Msp if u.member_ids.is_empty() => Err(StoreError::Invalid(
            "a managed service provider needs at least one member".into(),
        )),
        Role::ForceOfficer if u.force_id.is_none() => {
            Err(StoreError::Invalid("a force officer needs a force".into()))
        }
        _ => Ok(()),
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A batch's rollup sums, one per key (every backend upserts once per distinct key, not per
/// event), in key order so that concurrent writers touch rows in the same order.
#[derive(Default)]
pub(crate) struct Rollups {
    pub(crate) daily: std::collections::BTreeMap<(i64, bool), i64>,
    pub(crate) src: std::collections::BTreeMap<(i64, IpAddr), i64>,
    pub(crate) port: std::collections::BTreeMap<(i64, u8, u16), i64>,
}

/// Sums `events` into their rollups: every event by day and disposition; inbound ones by
/// source, and by protocol and destination port.
pub(crate) fn rollups(events: &[Event]) -> Rollups {
    let mut r = Rollups::default();
    for e in events {
        let day = day_of(e.time_ms);
        let n = e.count.max(1) as i64;
        *r.daily.entry((day, e.action.is_allowed())).or_default() += n;
        if e.direction == watchhouse_event::Direction::Inbound {
            *r.src.entry((day, e.src_ip)).or_default() += n;
            if let Some(p) = e.dst_port {
                *r.port.entry((day, e.protocol.0, p)).or_default() += n;
            }
        }
    }
    r
}

/// Days since the epoch for a millisecond timestamp (UTC).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchhouse_detect::{AlertKind, Severity};
    use watchhouse_event::{Action, Direction, Format, IpProto};

    fn ev(t: i64, port: u16, count: u32) -> Event {
        Event {
            time_ms: t,
            last_ms: t + 5,
            action: Action::Drop,
            protocol: IpProto::TCP,
            src_ip: "192.0.2.1".parse().unwrap(),
            src_port: None,
            dst_ip: "198.51.100.1".parse().unwrap(),
            dst_port: Some(port),
            direction: Direction::Inbound,
            in_iface: None,
            out_iface: None,
            rule: None,
            device: None,
            format: Format::Netfilter,
            bytes: None,
            packets: None,
            count,
            raw: String::new(),
            nat: None,
            product: None,
            host: None,
            url: None,
        }
    }

    fn obs(key: &str, i: usize, list: &str) -> Observation {
        Observation {
            kind: AlertKind::PortScan,
            severity: Severity::Medium,
            dedup_key: key.into(),
            subject_ip: "192.0.2.1".parse().unwrap(),
            lists: vec![list.into()],
            labels: vec![],
            event_index: i,
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://wh:secret@db:5432/wh"),
            "postgres://wh:***@db:5432/wh"
        );
        assert_eq!(redact_url("postgres://wh@db/wh"), "postgres://wh@db/wh");
        assert_eq!(
            redact_url("sqlite:///var/lib/wh.db"),
            "sqlite:///var/lib/wh.db"
        );
    }

    #[test]
    fn observations_fold_per_key_with_bounds() {
        let events: Vec<Event> = (0..100).map(|i| ev(1000 + i, (i % 40) as u16, 2)).collect();
        let mut o: Vec<Observation> = (0..100).map(|i| obs("a", i, "x")).collect();
        o.push(obs("b", 7, "y"));
        o.push(obs("a", 3, "z"));
        let d = fold_observations(&events, &o).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].first.dedup_key, "a");
        assert_eq!(d[0].observations, 101);
        assert_eq!(d[0].events, 202, "counts are summed per observation");
        assert_eq!((d[0].first_ms, d[0].last_ms), (1000, 1104));
        assert_eq!(d[0].ports.len(), MAX_ALERT_PORTS);
        assert_eq!(d[0].event_indices.len(), MAX_ALERT_EVIDENCE);
        assert_eq!(
            d[0].lists.iter().cloned().collect::<Vec<_>>(),
            vec!["x", "z"]
        );
        assert_eq!((d[1].events, d[1].event_indices.clone()), (2, vec![7]));
        assert!(fold_observations(&events, &[obs("c", 100, "x")]).is_err());
    }
}
