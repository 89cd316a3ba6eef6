//! Notifications: urgent (high and critical) alerts by email and HMAC-signed webhooks within
//! seconds, everything else in a daily digest.
//!
//! The notifier is one task that follows the alerts table with a durable cursor (`kv`), so a
//! restart neither loses nor repeats a round. No storms: each round groups a recipient's new
//! urgent alerts into one message, and each recipient and webhook gets at most
//! `notify_max_per_hour` urgent messages an hour — the rest are counted as held and appear in
//! the digest.
//!
//! Who is told: the member's own users and the force officers for its area, each by their
//! preferences. Analysts and administrators watch the national view instead.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use sha2::Sha256;
use watchhouse_detect::{describe, AlertFacts, Severity};
use watchhouse_store::{Alert, Id, Member, Role, Scope, User};

use crate::{now_ms, AppState};

const CURSOR: &str = "notify.cursor";
const DIGEST_DAY: &str = "notify.digest_day";
const WEEKLY: &str = "notify.weekly";
/// Alerts older than this when first seen by the notifier (say, after a long outage) go to the
/// digest instead of being sent as urgent.
const STALE_MS: i64 = 15 * 60 * 1000;

/// The `X-Watchhouse-Signature` value for a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256
/// of "<t>.<body>">`, so a receiver can check both origin and freshness.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An SMTP transport from the configuration, or `None` when email is off.
pub fn mailer(
    cfg: &crate::HubConfig,
) -> Result<Option<AsyncSmtpTransport<Tokio1Executor>>, String> {
    if cfg.smtp_host.is_empty() {
        return Ok(None);
    }
    let b = match cfg.smtp_security.as_str() {
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.smtp_host)
            .map_err(|e| format!("smtp_host: {e}"))?,
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.smtp_host)
            .map_err(|e| format!("smtp_host: {e}"))?,
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host),
        other => {
            return Err(format!(
                "smtp_security `{other}`: use starttls, tls or none"
            ))
        }
    };
    let mut b = b.port(cfg.smtp_port).timeout(Some(Duration::from_secs(20)));
    if !cfg.smtp_username.is_empty() {
        b = b.credentials(Credentials::new(
            cfg.smtp_username.clone(),
            cfg.smtp_password.clone(),
        ));
    }
    cfg.smtp_from
        .parse::<Mailbox>()
        .map_err(|e| format!("smtp_from `{}`: {e}", cfg.smtp_from))?;
    Ok(Some(b.build()))
}

/// Does `u` see `member` (whose force is in `region`), and should they be told about it?
fn recipient(u: &User, member: &Member, region: &str) -> bool {
    match u.role {
        Role::MemberViewer | Role::MemberAdmin | Role::Msp | Role::ForceOfficer => {
            match Scope::for_user(u) {
                Scope::All => true,
                Scope::Region(r) => r == region,
                Scope::Force(f) => f == member.force_id,
                Scope::Members(ids) => ids.contains(&member.id),
            }
        }
        Role::Analyst | Role::Admin | Role::Partner => false,
    }
}

fn text(a: &Alert) -> watchhouse_detect::AlertText {
    describe(&AlertFacts {
        kind: a.kind,
        severity: a.severity,
        subject_ip: a.subject_ip,
        lists: a.lists.clone(),
        ports: a.ports.clone(),
        event_count: a.event_count,
    })
}

fn link(st: &AppState, a: &Alert) -> String {
    let base = if st.config.public_url.is_empty() {
        format!("http://{}", st.config.listen)
    } else {
        st.config.public_url.trim_end_matches('/').to_owned()
    };
    format!("{base}/alerts/{}", a.id)
}

/// The urgent email for one recipient and one round.
pub fn urgent_email(st: &AppState, alerts: &[&Alert]) -> (String, String) {
    let subject = match alerts {
        [one] => format!("[Watchhouse] Act now: {}", text(one).title),
        many => format!(
            "[Watchhouse] {} urgent alerts for {}",
            many.len(),
            many.iter()
                .map(|a| a.member_name.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut body =
        String::from("Watchhouse has seen something on your network that needs attention.\n\n");
    for a in alerts.iter().take(20) {
        let t = text(a);
        body.push_str(&format!(
            "{} ({})\n\n{}\n\nWhat to do:\n",
            t.title, a.member_name, t.what_it_means
        ));
        for (i, s) in t.what_to_do.iter().enumerate() {
            body.push_str(&format!("  {}. {s}\n", i + 1));
        }
        body.push_str(&format!("\nDetails and evidence: {}\n\n", link(st, a)));
    }
    if alerts.len() > 20 {
        body.push_str(&format!(
            "…and {} more: sign in to see them all.\n",
            alerts.len() - 20
        ));
    }
    body.push_str("You receive this because your Watchhouse account asks for urgent alerts by email. Change it under Notifications after signing in.\n");
    (subject, body)
}

/// The daily digest for one recipient.
pub fn digest_email(st: &AppState, alerts: &[Alert]) -> (String, String) {
    let mut by: BTreeMap<Severity, usize> = BTreeMap::new();
    for a in alerts {
        *by.entry(a.severity).or_default() += 1;
    }
    let subject = format!("[Watchhouse] Daily summary: {} new alerts", alerts.len());
    let mut body = String::from("New alerts in the last 24 hours:\n\n");
    for (s, n) in by.iter().rev() {
        body.push_str(&format!("  {n} {}\n", s.as_str()));
    }
    body.push('\n');
    for a in alerts.iter().take(50) {
        body.push_str(&format!(
            "- [{}] {} ({})\n  {}\n",
            a.severity.as_str(),
            text(a).title,
            a.member_name,
            link(st, a)
        ));
    }
    body.push_str("\nYou receive this because your Watchhouse account asks for a daily summary. Change it under Notifications after signing in.\n");
    (subject, body)
}

/// Per-recipient sliding-hour limit.
#[derive(Default)]
struct Limiter(HashMap<String, VecDeque<Instant>>);

impl Limiter {
    fn allow(&mut self, key: &str, max: u32) -> bool {
        let q = self.0.entry(key.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|t| t.elapsed() > Duration::from_secs(3600))
        {
            q.pop_front();
        }
        if q.len() as u32 >= max {
            return false;
        }
        q.push_back(Instant::now());
        true
    }
}

async fn send_email(
    st: &AppState,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    to: &str,
    subject: &str,
    body: String,
) -> bool {
    let msg = (|| -> Result<Message, String> {
        Message::builder()
            .from(st.config.smtp_from.parse().map_err(|e| format!("{e}"))?)
            .to(to.parse().map_err(|e| format!("{e}"))?)
            .subject(subject)
            .body(body)
            .map_err(|e| e.to_string())
    })();
    let r = match msg {
        Ok(m) => mailer.send(m).await.map_err(|e| e.to_string()).map(|_| ()),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => true,
        Err(e) => {
            st.metrics
                .notifications_failed
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(to = %to, error = %e, "cannot send email");
            false
        }
    }
}

async fn post_webhook(
    st: &AppState,
    client: &reqwest::Client,
    hook: &watchhouse_store::Webhook,
    alerts: &[&Alert],
) {
    let payload = json!({
        "member_id": hook.member_id,
        "alerts": alerts.iter().map(|a| {
            let t = text(a);
            json!({
                "id": a.id, "kind": a.kind, "severity": a.severity, "subject_ip": a.subject_ip,
                "member_name": a.member_name, "first_seen_ms": a.first_seen_ms, "last_seen_ms": a.last_seen_ms,
                "event_count": a.event_count, "title": t.title, "what_it_means": t.what_it_means,
                "what_to_do": t.what_to_do, "url": link(st, a),
            })
        }).collect::<Vec<_>>(),
    });
    let body = payload.to_string();
    let t = now_ms() / 1000;
    let sig = sign(&hook.secret, t, body.as_bytes());
    for attempt in 0..3u32 {
        let r = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-watchhouse-signature", &sig)
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(res) if res.status().is_success() => {
                st.metrics.notified("webhook");
                return;
            }
            Ok(res) => {
                tracing::warn!(hook = hook.id, status = %res.status(), attempt, "webhook refused")
            }
            Err(e) => tracing::warn!(hook = hook.id, error = %e, attempt, "webhook failed"),
        }
        tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
    }
    st.metrics
        .notifications_failed
        .fetch_add(1, Ordering::Relaxed);
    tracing::error!(hook = hook.id, url = %crate::intel::feeds::redact(&hook.url), "webhook gave up after 3 attempts");
}

/// One notification round: new urgent alerts since the cursor, grouped per recipient and per
/// webhook, within the rate limit.
async fn round(
    st: &AppState,
    mailer: Option<&AsyncSmtpTransport<Tokio1Executor>>,
    client: &reqwest::Client,
    limiter: &mut Limiter,
) -> Result<(), watchhouse_store::StoreError> {
    let cursor: Id = st
        .store
        .kv_get(CURSOR)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let new = st.store.alerts_after(cursor, 5_000).await?;
    let Some(last) = new.last().map(|a| a.id) else {
        return Ok(());
    };
    let now = now_ms();
    let urgent: Vec<&Alert> = new
        .iter()
        .filter(|a| a.severity >= Severity::High && now - a.last_seen_ms < STALE_MS)
        .collect();
    if !urgent.is_empty() {
        let members = st.store.list_members(&Scope::All).await?;
        let forces = st.store.list_forces(&Scope::All).await?;
        let users = st.store.list_users(&Scope::All).await?;
        let mut per_user: BTreeMap<Id, Vec<&Alert>> = BTreeMap::new();
        let mut per_member: BTreeMap<Id, Vec<&Alert>> = BTreeMap::new();
        for a in &urgent {
            per_member.entry(a.member_id).or_default().push(a);
            let Some(m) = members.iter().find(|m| m.id == a.member_id) else {
                continue;
            };
            let region = forces
                .iter()
                .find(|f| f.id == m.force_id)
                .map(|f| f.region.as_str())
                .unwrap_or("");
            for u in users.iter().filter(|u| recipient(u, m, region)) {
                per_user.entry(u.id).or_default().push(a);
            }
        }
        if let Some(mailer) = mailer {
            for (uid, alerts) in per_user {
                let Some(u) = users.iter().find(|u| u.id == uid) else {
                    continue;
                };
                if !st.store.notify_prefs(uid).await?.0 {
                    continue;
                }
                if !limiter.allow(&format!("user:{uid}"), st.config.notify_max_per_hour) {
                    st.metrics
                        .notifications_held
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        user = uid,
                        alerts = alerts.len(),
                        "urgent email held by the rate limit; it goes in the digest"
                    );
                    continue;
                }
                let (subject, body) = urgent_email(st, &alerts);
                if send_email(st, mailer, &u.email, &subject, body).await {
                    st.metrics.notified("email");
                }
            }
        }
        for (member, alerts) in per_member {
            let Some(hooks) = st.store.list_webhooks(&Scope::All, member).await? else {
                continue;
            };
            for h in hooks {
                if !limiter.allow(&format!("hook:{}", h.id), st.config.notify_max_per_hour) {
                    st.metrics
                        .notifications_held
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                post_webhook(st, client, &h, &alerts).await;
            }
        }
    }
    st.store.kv_set(CURSOR, &last.to_string()).await?;
    Ok(())
}

/// The daily digest, once a day at `digest_hour_utc`: every alert of the last 24 hours in each
/// recipient's scope (urgent ones too, so nothing held by the rate limit is missed).
async fn digest(
    st: &AppState,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
) -> Result<(), watchhouse_store::StoreError> {
    let now = now_ms();
    let day = now.div_euclid(86_400_000);
    let hour = (now.rem_euclid(86_400_000) / 3_600_000) as u32;
    if hour < st.config.digest_hour_utc {
        return Ok(());
    }
    let last: i64 = st
        .store
        .kv_get(DIGEST_DAY)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN);
    if last >= day {
        return Ok(());
    }
    st.store.kv_set(DIGEST_DAY, &day.to_string()).await?;
    let members = st.store.list_members(&Scope::All).await?;
    let forces = st.store.list_forces(&Scope::All).await?;
    for u in st.store.list_users(&Scope::All).await? {
        let sees_some = members.iter().any(|m| {
            let region = forces
                .iter()
                .find(|f| f.id == m.force_id)
                .map(|f| f.region.as_str())
                .unwrap_or("");
            recipient(&u, m, region)
        });
        if !sees_some || !st.store.notify_prefs(u.id).await?.1 {
            continue;
        }
        let alerts = st
            .store
            .alerts_created_between(&Scope::for_user(&u), now - 86_400_000, now, 1_000)
            .await?;
        if alerts.is_empty() {
            continue;
        }
        let (subject, body) = digest_email(st, &alerts);
        if send_email(st, mailer, &u.email, &subject, body).await {
            st.metrics.notified("digest");
        }
    }
    Ok(())
}

/// The weekly report: on `weekly_report_weekday` at `digest_hour_utc`, each member-side user
/// who takes the daily summary gets last week's report for each of their members, PDF attached.
async fn weekly(
    st: &AppState,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
) -> Result<(), watchhouse_store::StoreError> {
    use lettre::message::{header::ContentType, Attachment, MultiPart, SinglePart};
    let now = now_ms();
    let day = now.div_euclid(86_400_000);
    let weekday = (day + 3).rem_euclid(7) as u32;
    let hour = (now.rem_euclid(86_400_000) / 3_600_000) as u32;
    if weekday != st.config.weekly_report_weekday || hour < st.config.digest_hour_utc {
        return Ok(());
    }
    let period = watchhouse_web::report::Period::last_week(day);
    if st.store.kv_get(WEEKLY).await?.as_deref() == Some(period.label.as_str()) {
        return Ok(());
    }
    st.store.kv_set(WEEKLY, &period.label).await?;
    let intel = st.intel();
    for u in st.store.list_users(&Scope::All).await? {
        if !u.role.is_member_side() || !st.store.notify_prefs(u.id).await?.1 {
            continue;
        }
        for m in &u.member_ids {
            let Some(r) = crate::report::gather(
                st.store.as_ref(),
                &intel,
                st.asn().as_deref(),
                &Scope::for_user(&u),
                *m,
                &period,
                now,
            )
            .await?
            else {
                continue;
            };
            let subject = format!(
                "[Watchhouse] Weekly report for {} ({})",
                r.member_name, period.label
            );
            let mut body = format!(
                "Last week ({}) your firewall recorded {} events ({} blocked, {} allowed) and Watchhouse raised {} alerts.\n\nWhat to do:\n",
                period.label, r.totals.events, r.totals.blocked, r.totals.allowed, r.totals.alerts
            );
            for (i, a) in r.actions.iter().enumerate() {
                body.push_str(&format!("  {}. {a}\n", i + 1));
            }
            body.push_str("\nThe full report is attached as a PDF.\n");
            let pdf = watchhouse_web::report::report_pdf(&r);
            let file = format!("watchhouse-{}-{}.pdf", r.member_id, period.label);
            let msg = Message::builder()
                .from(st.config.smtp_from.parse().map_err(|e| {
                    watchhouse_store::StoreError::Invalid(format!("smtp_from: {e}"))
                })?)
                .to(match u.email.parse() {
                    Ok(t) => t,
                    Err(_) => continue,
                })
                .subject(subject)
                .multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(body))
                        .singlepart(Attachment::new(file).body(
                            pdf,
                            ContentType::parse("application/pdf").expect("a valid content type"),
                        )),
                );
            match msg {
                Ok(m) => match mailer.send(m).await {
                    Ok(_) => st.metrics.notified("digest"),
                    Err(e) => {
                        st.metrics
                            .notifications_failed
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::error!(to = %u.email, error = %e, "cannot send the weekly report");
                    }
                },
                Err(e) => tracing::error!(error = %e, "cannot build the weekly report email"),
            }
        }
    }
    Ok(())
}

/// Runs the notifier until dropped.
pub async fn run(st: AppState) {
    let mailer = match mailer(&st.config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "email notifications are off: fix the smtp settings");
            None
        }
    };
    let client = crate::intel::feeds::client_with(&st.config.feed_ca_file);
    let mut limiter = Limiter::default();
    let every = Duration::from_secs(st.config.notify_interval_secs.max(1));
    loop {
        tokio::time::sleep(every).await;
        // One notifier per deployment: the process holding the lease.
        let lease = (every.as_millis() as i64).saturating_mul(3).max(15_000);
        match st
            .store
            .try_lease("notifier", &st.node_id, crate::now_ms(), lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "notifier lease unavailable; will retry");
                continue;
            }
        }
        if let Err(e) = round(&st, mailer.as_ref(), &client, &mut limiter).await {
            tracing::error!(error = %e, "notification round failed; will retry");
        }
        if let Some(m) = &mailer {
            if let Err(e) = digest(&st, m).await {
                tracing::error!(error = %e, "digest failed; will retry");
            }
            if let Err(e) = weekly(&st, m).await {
                tracing::error!(error = %e, "weekly reports failed; will retry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_time_and_body() {
        let a = sign("secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_ne!(a, sign("secret", 1_700_000_001, b"{}"));
        assert_ne!(a, sign("other", 1_700_000_000, b"{}"));
        assert_ne!(a, sign("secret", 1_700_000_000, b"{ }"));
        // RFC 4231 test case 2, as a check of the HMAC itself.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_limiter_allows_at_most_the_maximum_per_hour() {
        let mut l = Limiter::default();
        assert!(l.allow("a", 2) && l.allow("a", 2));
        assert!(!l.allow("a", 2));
        assert!(l.allow("b", 2), "per recipient");
    }
}
