//! Passwords, secrets, sessions, CSRF and the sign-in rate limit.
//!
//! - Passwords: argon2id (PHC strings), verified on the blocking pool.
//! - Session cookies, enrolment tokens and collector credentials are 256-bit random values; the
//!   database keeps only their SHA-256, so a database leak yields no usable secret.
//! - CSRF: each session has its own token, required in every form (`csrf` field) and every
//!   cookie-authenticated API write (`X-CSRF-Token`). The sign-in form uses a double-submit cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use watchhouse_store::{Scope, Session};

use crate::error::ApiError;
use crate::AppState;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "wh_session";
/// Sign-in form double-submit cookie.
pub const LOGIN_CSRF_COOKIE: &str = "wh_login_csrf";

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex::encode(b)
}

/// SHA-256 hex of a secret, as stored.
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time string equality.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source failed");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Verifies a password against a PHC string. A malformed hash never verifies.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the account does not exist, so that
/// response time does not reveal which email addresses have accounts.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&random_token()))
}

/// Reads a cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Builds a `Set-Cookie` value.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A signed-in caller and what they may see.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The session (user and CSRF token).
    pub session: Session,
    /// The user's scope.
    pub scope: Scope,
    /// Signed in with `Authorization: Bearer` (API only; no cookie, so no CSRF token).
    pub via_token: bool,
}

async fn load_session(parts: &Parts, state: &AppState) -> Result<Option<Authed>, ApiError> {
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = state
        .store
        .session(&hash_secret(token), crate::now_ms())
        .await?;
    Ok(session.map(|session| Authed {
        scope: Scope::for_user(&session.user),
        session,
        via_token: false,
    }))
}

/// A session, or for the JSON API a bearer token (`watchhouse admin api-token create`).
async fn load_api_caller(parts: &Parts, state: &AppState) -> Result<Option<Authed>, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = bearer else {
        return load_session(parts, state).await;
    };
    match state.store.user_for_api_token(&hash_secret(token)).await? {
        Some(user) => Ok(Some(Authed {
            scope: Scope::for_user(&user),
            session: Session {
                user,
                csrf: String::new(),
                expires_ms: i64::MAX,
            },
            via_token: true,
        })),
        None => Err(ApiError::unauthorised(
            "bad_token",
            "The bearer token is not valid (revoked, or its account is disabled). Ask an administrator for a new one.",
        )),
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        load_api_caller(parts, state).await?.ok_or_else(|| {
            ApiError::unauthorised(
                "not_signed_in",
                "Sign in first: POST /login with your email and password, then send the wh_session cookie.",
            )
        })
    }
}

/// Like [`Authed`], for HTML pages: an anonymous visitor is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct PageAuthed(pub Authed);

/// Rejection for pages: a redirect to sign in, or an error page.
pub enum PageRejection {
    /// Go and sign in, then come back.
    Login(String),
    /// Something failed.
    Error(ApiError),
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            PageRejection::Login(next) => {
                Redirect::to(&format!("/login?next={}", urlencode(&next))).into_response()
            }
            PageRejection::Error(e) => crate::pages::error_response(None, e),
        }
    }
}

impl FromRequestParts<AppState> for PageAuthed {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, PageRejection> {
        match load_session(parts, state).await {
            Ok(Some(a)) => Ok(PageAuthed(a)),
            Ok(None) => Err(PageRejection::Login(
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "/".into()),
            )),
            Err(e) => Err(PageRejection::Error(e)),
        }
    }
}

/// May this user change a member's settings (blocklist exclusions, webhooks)? Viewers and
/// partners may not; everyone else may, within their scope.
pub fn may_change_member(a: &Authed) -> bool {
    !matches!(
        a.session.user.role,
        watchhouse_store::Role::MemberViewer | watchhouse_store::Role::Partner
    )
}

/// Percent-encodes a string for a query parameter.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Only same-site paths are followed after sign-in (no open redirects).
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.contains("://")
    {
        next
    } else {
        "/"
    }
}

/// Counts failed sign-ins per account and per client address within a window.
#[derive(Debug)]
pub struct LoginLimiter {
    max_per_account: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Most keys tracked before old entries are pruned.
const LIMITER_CAP: usize = 100_000;

impl LoginLimiter {
    /// A limiter allowing `max_per_account` failures per account (4× per address) per window.
    pub fn new(max_per_account: u32, window: Duration) -> Self {
        LoginLimiter {
            max_per_account: max_per_account.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, ip: &str) -> [(String, u32); 2] {
        [
            (format!("acct:{}", email.trim().to_lowercase()), 1),
            (format!("ip:{ip}"), 4),
        ]
    }

    /// Seconds to wait if this account or address is locked out now.
    pub fn check(&self, email: &str, ip: &str) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Self::keys(email, ip).iter().find_map(|(k, mult)| {
            let (n, start) = map.get(k)?;
            let elapsed = now.duration_since(*start);
            (elapsed < self.window && *n >= self.max_per_account * mult)
                .then(|| (self.window - elapsed).as_secs().max(1))
        })
    }

    /// Records a failure.
    pub fn fail(&self, email: &str, ip: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() > LIMITER_CAP {
            map.retain(|_, (_, t)| now.duration_since(*t) < self.window);
        }
        for (k, _) in Self::keys(email, ip) {
            let e = map.entry(k).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    /// Clears the account's failures after a successful sign-in.
    pub fn succeed(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("acct:{}", email.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_hashes_are_salted() {
        let h1 = hash_password("correct horse");
        let h2 = hash_password("correct horse");
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2);
        assert!(verify_password("correct horse", &h1));
        assert!(!verify_password("wrong", &h1));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn next_is_same_site_only() {
        assert_eq!(safe_next("/members/3"), "/members/3");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "evil",
            "/\\evil",
            "/x?u=http://e",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }

    #[test]
    fn limiter_locks_after_failures_and_resets_on_success() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.check("a@x", "1.1.1.1").is_none());
            l.fail("A@x", "1.1.1.1");
        }
        assert!(
            l.check("a@x", "2.2.2.2").is_some(),
            "per account, whatever the address"
        );
        assert!(l.check("b@x", "1.1.1.1").is_none(), "address not yet at 4x");
        l.succeed("a@x");
        assert!(l.check("a@x", "3.3.3.3").is_none());
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; wh_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "zz"), None);
    }
}

/// A machine client (TAXII partner, a firewall fetching its blocklist, a script): signed in by
/// `Authorization: Bearer <token>` (tokens from `watchhouse admin token`), HTTP Basic with an
/// account's email and password, or — for reads only — a browser session cookie.
#[derive(Debug, Clone)]
pub struct MachineAuthed {
    /// The user.
    pub user: watchhouse_store::User,
    /// Their scope.
    pub scope: Scope,
}

/// How long a verified Basic credential is remembered.
const BASIC_CACHE_SECS: u64 = 300;

/// Authenticates a machine client; `Ok(None)` when no credentials were sent.
pub async fn machine_user(
    parts: &Parts,
    state: &AppState,
    client_ip: &str,
) -> Result<Option<MachineAuthed>, ApiError> {
    let wrap = |u: watchhouse_store::User| MachineAuthed {
        scope: Scope::for_user(&u),
        user: u,
    };
    if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
        let h = h.to_str().unwrap_or("");
        if let Some(token) = h.strip_prefix("Bearer ").map(str::trim) {
            return match state.store.user_for_api_token(&hash_secret(token)).await? {
                Some(u) => Ok(Some(wrap(u))),
                None => Err(ApiError::unauthorised(
                    "bad_token",
                    "The bearer token is not valid (revoked, or its account is disabled). Ask an administrator for a new one.",
                )),
            };
        }
        if let Some(b64) = h.strip_prefix("Basic ").map(str::trim) {
            use base64::Engine;
            let bad = || {
                ApiError::unauthorised("bad_credentials", "The email address or password is wrong.")
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| bad())?;
            let raw = String::from_utf8(raw).map_err(|_| bad())?;
            let (email, password) = raw.split_once(':').ok_or_else(bad)?;
            let key: [u8; 32] = Sha256::digest(raw.as_bytes()).into();
            let cached = state
                .basic_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .filter(|(_, t)| t.elapsed() < Duration::from_secs(BASIC_CACHE_SECS))
                .map(|(id, _)| *id);
            if let Some(retry) = state.limiter.check(email, client_ip) {
                return Err(ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    format!("Too many failed sign-ins. Try again in {retry} s."),
                ));
            }
            let found = state.store.user_for_login(email).await?;
            if let (Some(id), Some((u, _))) = (cached, &found) {
                if u.id == id {
                    return Ok(Some(wrap(u.clone())));
                }
            }
            let phc = found
                .as_ref()
                .map(|(_, h)| h.clone())
                .unwrap_or_else(|| dummy_hash().to_owned());
            let pw = password.to_owned();
            let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
                .await
                .unwrap_or(false);
            return match (ok, found) {
                (true, Some((u, _))) => {
                    state.limiter.succeed(email);
                    let mut c = state.basic_cache.lock().unwrap_or_else(|p| p.into_inner());
                    if c.len() > 10_000 {
                        c.clear();
                    }
                    c.insert(key, (u.id, Instant::now()));
                    Ok(Some(wrap(u)))
                }
                _ => {
                    state.limiter.fail(email, client_ip);
                    state
                        .metrics
                        .login_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Err(bad())
                }
            };
        }
        return Err(ApiError::unauthorised(
            "bad_authorization",
            "Use `Authorization: Bearer <token>` or HTTP Basic with your email and password.",
        ));
    }
    if parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD {
        if let Some(a) = load_session(parts, state).await? {
            return Ok(Some(wrap(a.session.user)));
        }
    }
    Ok(None)
}
