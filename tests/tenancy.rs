//! Tenant isolation, black-box, on every endpoint of the real binary.
//!
//! The demo seeds two forces; Northshire has Riverside and Harbour, Southmoor has Oakfield.
//! Every member-scoped route is asked, by every kind of user, about every member and every
//! alert; anything out of scope must answer exactly like something that does not exist.
//! `every_route_is_covered` reads the hub's router and fails if a route is added without a case.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{eventually, Client, Demo};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every route the hub serves, as written in its router, and how this test covers it.
const COVERED: &[(&str, &str)] = &[
    ("/healthz", "public"),
    ("/metrics", "public, aggregate counts only"),
    ("/static/app.css", "public"),
    ("/static/favicon.svg", "public"),
    ("/favicon.ico", "public"),
    ("/", "lists only in-scope members and alerts"),
    ("/login", "public"),
    ("/logout", "own session only"),
    ("/members/{id}", "per member"),
    ("/members/{id}/report", "per member"),
    ("/members/{id}/blocklist-exclusions", "per member"),
    ("/members/{id}/blocklist-exclusions/delete", "per member"),
    ("/api/v1/members/{id}/report", "per member"),
    ("/alerts/{id}", "per alert"),
    ("/alerts/{id}/status", "per alert"),
    ("/alerts/{id}/feedback", "per alert"),
    ("/api/v1/alerts/{id}/feedback", "per alert"),
    ("/intel", "analysts and administrators only (intel_roles)"),
    ("/notifications", "own user (area_views_are_scoped)"),
    (
        "/area",
        "per force, region or nation (area_views_are_scoped)",
    ),
    (
        "/api/v1/evidence",
        "per force, region or nation (area_views_are_scoped)",
    ),
    ("/intel/feeds", "administrators only (intel_roles)"),
    (
        "/intel/feeds/{name}/delete",
        "administrators only (intel_roles)",
    ),
    (
        "/api/v1/intel/feeds/{name}",
        "administrators only (intel_roles)",
    ),
    (
        "/intel/indicators",
        "analysts and administrators only (intel_roles)",
    ),
    (
        "/intel/indicators/{id}/revoke",
        "analysts and administrators only (intel_roles)",
    ),
    ("/api/v1/enrol", "token-scoped"),
    ("/api/v1/ingest", "credential-scoped (tests/ingest.rs)"),
    (
        "/api/v1/collector/heartbeat",
        "credential-scoped: writes only its own collector (tests/watchlist.rs)",
    ),
    (
        "/api/v1/collector/watchlist",
        "credential-scoped, member-independent (tests/watchlist.rs)",
    ),
    ("/api/v1/me", "own user"),
    ("/api/v1/me/notifications", "own user (tests/notify.rs)"),
    ("/api/v1/members/{id}/webhooks", "per member"),
    ("/api/v1/members/{id}/webhooks/{hook}", "per member"),
    ("/api/v1/forces", "per force"),
    ("/api/v1/forces/{id}/members", "per force"),
    ("/api/v1/members", "list"),
    ("/api/v1/members/{id}", "per member"),
    ("/api/v1/members/{id}/events", "per member"),
    ("/api/v1/members/{id}/alerts", "per member"),
    ("/api/v1/members/{id}/summary", "per member"),
    ("/api/v1/members/{id}/collectors", "per member"),
    ("/api/v1/members/{id}/enrolment-tokens", "per member"),
    ("/api/v1/members/{id}/blocklist/{format}", "per member"),
    ("/api/v1/members/{id}/blocklist-exclusions", "per member"),
    (
        "/api/v1/members/{id}/blocklist-exclusions/{cidr}",
        "per member",
    ),
    (
        "/api/v1/intel/feeds",
        "analysts and administrators only (intel_roles)",
    ),
    (
        "/api/v1/intel/indicators",
        "analysts and administrators only (intel_roles)",
    ),
    (
        "/api/v1/intel/indicators/{id}",
        "analysts and administrators only (intel_roles)",
    ),
    (
        "/api/v1/intel/check/{value}",
        "analysts and administrators only (intel_roles)",
    ),
    (
        "/api/v1/intel/export/stix",
        "partners, analysts, administrators; TLP ceiling (intel_roles, tests/sharing.rs)",
    ),
    (
        "/api/v1/intel/export/misp/{file}",
        "partners, analysts, administrators; TLP ceiling (intel_roles, tests/sharing.rs)",
    ),
    (
        "/taxii2/",
        "partners, analysts, administrators (intel_roles)",
    ),
    (
        "/taxii2/api/",
        "partners, analysts, administrators (intel_roles)",
    ),
    (
        "/taxii2/api/collections/",
        "partners, analysts, administrators (intel_roles)",
    ),
    (
        "/taxii2/api/collections/{id}/",
        "partners, analysts, administrators (intel_roles)",
    ),
    (
        "/taxii2/api/collections/{id}/objects/",
        "TLP ceiling per account (tests/sharing.rs)",
    ),
    (
        "/taxii2/api/collections/{id}/objects/{object_id}/",
        "TLP ceiling per account (tests/sharing.rs)",
    ),
    (
        "/taxii2/api/collections/{id}/objects/{object_id}/versions/",
        "TLP ceiling per account (tests/sharing.rs)",
    ),
    (
        "/taxii2/api/collections/{id}/manifest/",
        "TLP ceiling per account (tests/sharing.rs)",
    ),
    (
        "/taxii2/api/status/{id}/",
        "own requests only (tests/sharing.rs)",
    ),
    ("/api/v1/alerts", "list"),
    ("/api/v1/alerts/{id}", "per alert"),
    ("/api/v1/alerts/{id}/status", "per alert"),
];

#[test]
fn every_route_is_covered() {
    let src = include_str!("../crates/hub/src/lib.rs");
    let routes: BTreeSet<&str> = src
        .split(".route(\n")
        .skip(1)
        .chain(src.split(".route(").skip(1))
        .filter_map(|s| {
            let s = s.trim_start();
            let s = s.strip_prefix('"')?;
            Some(&s[..s.find('"')?])
        })
        .collect();
    assert!(routes.len() >= 20, "found only {routes:?}");
    let covered: BTreeSet<&str> = COVERED.iter().map(|(r, _)| *r).collect();
    let missing: Vec<_> = routes.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without a tenancy case: {missing:?}"
    );
}

const MEMBER_GETS: &[&str] = &[
    "/api/v1/members/{id}",
    "/api/v1/members/{id}/events",
    "/api/v1/members/{id}/alerts",
    "/api/v1/members/{id}/summary",
    "/api/v1/members/{id}/collectors",
    "/api/v1/members/{id}/blocklist/txt",
    "/api/v1/members/{id}/blocklist/nft",
    "/api/v1/members/{id}/blocklist-exclusions",
    "/api/v1/members/{id}/webhooks",
    "/api/v1/members/{id}/report",
    "/api/v1/members/{id}/report?format=pdf",
];

async fn member_ids_in(c: &Client) -> anyhow::Result<BTreeSet<i64>> {
    let (s, v) = c.get_json("/api/v1/members").await?;
    assert_eq!(s, StatusCode::OK);
    Ok(v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect())
}

/// Asserts what `c` may and may not see, for every member-scoped and alert-scoped route.
async fn check_scope(
    who: &str,
    c: &Client,
    visible: &BTreeSet<i64>,
    all: &[i64],
    alerts_by_member: &[(i64, i64)],
    may_write: bool,
) -> anyhow::Result<()> {
    assert_eq!(&member_ids_in(c).await?, visible, "{who}: member list");
    for &m in all {
        let expect = if visible.contains(&m) {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        for route in MEMBER_GETS {
            let path = route.replace("{id}", &m.to_string());
            let (s, body) = c.get_json(&path).await?;
            assert_eq!(s, expect, "{who}: GET {path}");
            if s == StatusCode::NOT_FOUND {
                assert_eq!(body["code"], "not_found", "{who}: {path}");
                assert!(body.get("events").is_none() && body.get("member").is_none());
            }
        }
        let page = c.get(&format!("/members/{m}")).await?;
        assert_eq!(page.status(), expect, "{who}: GET /members/{m}");
        let page = c
            .get(&format!("/members/{m}/report?period=2026-W47"))
            .await?;
        assert_eq!(page.status(), expect, "{who}: GET /members/{m}/report");
        let (s, _) = c
            .post_json(&format!("/api/v1/members/{m}/enrolment-tokens"), &json!({}))
            .await?;
        if !visible.contains(&m) {
            assert_eq!(s, StatusCode::NOT_FOUND, "{who}: enrolment token for {m}");
        }
        // Blocklist exclusions: written only in scope, and only by those who may write.
        let path = format!("/api/v1/members/{m}/blocklist-exclusions");
        let (s, _) = c
            .post_json(&path, &json!({"cidr": "192.0.2.0/28", "note": "tenancy"}))
            .await?;
        let expect_write = match (visible.contains(&m), may_write) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, true) => StatusCode::OK,
            (true, false) => StatusCode::FORBIDDEN,
        };
        assert_eq!(s, expect_write, "{who}: POST {path}");
        let s = c.delete(&format!("{path}/192.0.2.0_28")).await?.status();
        let expect_delete = match (visible.contains(&m), may_write) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, true) => StatusCode::NO_CONTENT,
            (true, false) => StatusCode::FORBIDDEN,
        };
        assert_eq!(s, expect_delete, "{who}: DELETE {path}/…");
        // The same through the member page's forms.
        let form = c
            .post_form(
                &format!("/members/{m}/blocklist-exclusions"),
                &[
                    ("csrf", c.csrf.as_deref().unwrap()),
                    ("cidr", "192.0.2.64/28"),
                ],
            )
            .await?;
        let expect_form = match (visible.contains(&m), may_write) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, true) => StatusCode::SEE_OTHER,
            (true, false) => StatusCode::FORBIDDEN,
        };
        assert_eq!(form.status(), expect_form, "{who}: exclusion form for {m}");
        let form = c
            .post_form(
                &format!("/members/{m}/blocklist-exclusions/delete"),
                &[
                    ("csrf", c.csrf.as_deref().unwrap()),
                    ("cidr", "192.0.2.64/28"),
                ],
            )
            .await?;
        assert_eq!(
            form.status(),
            expect_form,
            "{who}: exclusion removal for {m}"
        );
        // Webhooks: the same rule (https only, so nothing is ever posted during this test).
        let path = format!("/api/v1/members/{m}/webhooks");
        let (s, v) = c
            .post_json(&path, &json!({"url": "https://127.0.0.1:9/x"}))
            .await?;
        let expect_add = match (visible.contains(&m), may_write) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, true) => StatusCode::CREATED,
            (true, false) => StatusCode::FORBIDDEN,
        };
        assert_eq!(s, expect_add, "{who}: POST {path}");
        if s == StatusCode::CREATED {
            let id = v["id"].as_i64().unwrap();
            assert_eq!(
                c.delete(&format!("{path}/{id}")).await?.status(),
                StatusCode::NO_CONTENT
            );
        } else {
            assert_eq!(
                c.delete(&format!("{path}/1")).await?.status(),
                expect_add,
                "{who}: DELETE webhook"
            );
        }
    }
    // Alerts: the list holds only in-scope members' alerts; each alert answers only in scope.
    let (_, list) = c.get_json("/api/v1/alerts?limit=1000").await?;
    for a in list["alerts"].as_array().unwrap() {
        assert!(
            visible.contains(&a["member_id"].as_i64().unwrap()),
            "{who}: alert list leaks {a}"
        );
    }
    for &(member, alert) in alerts_by_member {
        let inside = visible.contains(&member);
        let expect = if inside {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let (s, v) = c.get_json(&format!("/api/v1/alerts/{alert}")).await?;
        assert_eq!(s, expect, "{who}: GET /api/v1/alerts/{alert}");
        if inside {
            for e in v["evidence"].as_array().unwrap() {
                assert_eq!(
                    e["member_id"], member,
                    "{who}: evidence from another member"
                );
            }
        }
        let page = c.get(&format!("/alerts/{alert}")).await?;
        assert_eq!(page.status(), expect, "{who}: GET /alerts/{alert}");
        let (s, _) = c
            .post_json(
                &format!("/api/v1/alerts/{alert}/status"),
                &json!({ "status": "acknowledged" }),
            )
            .await?;
        let expect_write = match (inside, may_write) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, true) => StatusCode::OK,
            (true, false) => StatusCode::FORBIDDEN,
        };
        assert_eq!(s, expect_write, "{who}: POST /api/v1/alerts/{alert}/status");
        let form = c
            .post_form(
                &format!("/alerts/{alert}/status"),
                &[("csrf", c.csrf.as_deref().unwrap()), ("status", "new")],
            )
            .await?;
        let expect_form = match (inside, may_write) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, true) => StatusCode::SEE_OTHER,
            (true, false) => StatusCode::FORBIDDEN,
        };
        assert_eq!(
            form.status(),
            expect_form,
            "{who}: POST /alerts/{alert}/status"
        );
        // Feedback ("confirmed" changes neither status nor suppression, so later cases see the
        // same alerts).
        let (s, _) = c
            .post_json(
                &format!("/api/v1/alerts/{alert}/feedback"),
                &json!({ "feedback": "confirmed" }),
            )
            .await?;
        assert_eq!(
            s, expect_write,
            "{who}: POST /api/v1/alerts/{alert}/feedback"
        );
        let form = c
            .post_form(
                &format!("/alerts/{alert}/feedback"),
                &[
                    ("csrf", c.csrf.as_deref().unwrap()),
                    ("feedback", "confirmed"),
                ],
            )
            .await?;
        assert_eq!(
            form.status(),
            expect_form,
            "{who}: POST /alerts/{alert}/feedback"
        );
    }
    // The home page names only members in scope.
    let home = c.get("/").await?;
    if home.status() == StatusCode::OK {
        let html = home.text().await?;
        for &m in all {
            assert_eq!(
                html.contains(&format!("href=\"/members/{m}\"")),
                visible.contains(&m),
                "{who}: home page and member {m}"
            );
        }
    } else {
        assert_eq!(home.status(), StatusCode::SEE_OTHER, "{who}: home");
        let to = Client::location(&home).unwrap();
        let id: i64 = to.trim_start_matches("/members/").parse()?;
        assert!(visible.contains(&id));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_forces_see_only_their_own() -> anyhow::Result<()> {
    let demo = Demo::start(40).await?;
    let riverside = demo.member_id("Riverside");
    let harbour = demo.member_id("Harbour");
    let oakfield = demo.member_id("Oakfield");
    let all = [riverside, harbour, oakfield];
    let admin = demo.client("admin@watchhouse.example").await?;

    // Wait until every member has alerts, so every alert route can be tried across tenants.
    let alerts: Vec<(i64, i64)> = eventually(
        Duration::from_secs(90),
        "alerts at every member",
        || async {
            let (_, v) = admin.get_json("/api/v1/alerts?limit=1000").await?;
            let pairs: Vec<(i64, i64)> = v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["member_id"].as_i64().unwrap(), a["id"].as_i64().unwrap()))
                .collect();
            let members: BTreeSet<i64> = pairs.iter().map(|p| p.0).collect();
            Ok((members.len() == 3).then_some(pairs))
        },
    )
    .await?;
    // One alert per member is enough to exercise each route.
    let mut sample: Vec<(i64, i64)> = Vec::new();
    for m in all {
        sample.push(*alerts.iter().find(|(mm, _)| *mm == m).unwrap());
    }

    let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
    let cases: &[(&str, BTreeSet<i64>, bool)] = &[
        ("head@riverside.example", set(&[riverside]), true),
        ("office@harbour.example", set(&[harbour]), false),
        ("it@oakfield.example", set(&[oakfield]), true),
        ("support@msp.example", set(&[riverside, oakfield]), true),
        (
            "officer@northshire.example",
            set(&[riverside, harbour]),
            true,
        ),
        ("officer@southmoor.example", set(&[oakfield]), true),
        ("analyst@watchhouse.example", set(&all), true),
        ("admin@watchhouse.example", set(&all), true),
        ("partner@cert.example", set(&[]), false),
    ];
    for (email, visible, may_write) in cases {
        let c = demo.client(email).await?;
        check_scope(email, &c, visible, &all, &sample, *may_write).await?;
    }

    // Forces: an officer sees their own force and its members, never the other force.
    let north = demo.client("officer@northshire.example").await?;
    let (_, f) = north.get_json("/api/v1/forces").await?;
    let forces = f["forces"].as_array().unwrap();
    assert_eq!(forces.len(), 1);
    let north_id = forces[0]["id"].as_i64().unwrap();
    let (_, all_forces) = admin.get_json("/api/v1/forces").await?;
    let south_id = all_forces["forces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .find(|id| *id != north_id)
        .unwrap();
    let (s, v) = north
        .get_json(&format!("/api/v1/forces/{north_id}/members"))
        .await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
    let (s, _) = north
        .get_json(&format!("/api/v1/forces/{south_id}/members"))
        .await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let member = demo.client("head@riverside.example").await?;
    for id in [north_id, south_id] {
        let (s, _) = member
            .get_json(&format!("/api/v1/forces/{id}/members"))
            .await?;
        assert_eq!(s, StatusCode::NOT_FOUND, "members do not browse forces");
    }
    let (s, _) = admin
        .get_json(&format!("/api/v1/forces/{south_id}/members"))
        .await?;
    assert_eq!(s, StatusCode::OK);

    // /api/v1/me is always the caller.
    let (_, me) = member.get_json("/api/v1/me").await?;
    assert_eq!(me["user"]["email"], "head@riverside.example");
    assert!(me["user"].get("password_hash").is_none());

    // Without a session: API answers 401, pages send you to sign in.
    let anon = Client::new(&demo.url);
    for route in MEMBER_GETS {
        let (s, v) = anon
            .get_json(&route.replace("{id}", &riverside.to_string()))
            .await?;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["code"], "not_signed_in");
    }
    for path in [
        "/api/v1/alerts",
        "/api/v1/members",
        "/api/v1/forces",
        "/api/v1/me",
    ] {
        assert_eq!(
            anon.get(path).await?.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let r = anon.get(&format!("/members/{riverside}")).await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(Client::location(&r)
        .unwrap()
        .starts_with("/login?next=/members/"));

    // Writes need the session's CSRF token.
    let mut no_csrf = demo.client("head@riverside.example").await?;
    no_csrf.csrf = Some("forged".into());
    let (s, _) = no_csrf
        .post_json(
            &format!("/api/v1/alerts/{}/status", sample[0].1),
            &json!({ "status": "resolved" }),
        )
        .await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = no_csrf
        .post_form(
            &format!("/alerts/{}/status", sample[0].1),
            &[("csrf", "forged"), ("status", "resolved")],
        )
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A viewer is not offered a form it may not use; an administrator is.
    let viewer_page = demo
        .client("office@harbour.example")
        .await?
        .get(&format!("/alerts/{}", sample[1].1))
        .await?
        .text()
        .await?;
    assert!(!viewer_page.contains("Save status"));
    let member_page = member
        .get(&format!("/alerts/{}", sample[0].1))
        .await?
        .text()
        .await?;
    assert!(member_page.contains("Save status"));

    // Enrolment tokens: member admins for their own member only; viewers never.
    let (s, v) = member
        .post_json(
            &format!("/api/v1/members/{riverside}/enrolment-tokens"),
            &json!({}),
        )
        .await?;
    assert_eq!(s, StatusCode::CREATED);
    assert!(v["token"].as_str().unwrap().starts_with("whe_"));
    let viewer = demo.client("office@harbour.example").await?;
    let (s, _) = viewer
        .post_json(
            &format!("/api/v1/members/{harbour}/enrolment-tokens"),
            &json!({}),
        )
        .await?;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Signing out ends the session.
    let r = member
        .post_form("/logout", &[("csrf", member.csrf.as_deref().unwrap())])
        .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, _) = member.get_json("/api/v1/me").await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_failures_are_rate_limited_and_do_not_reveal_accounts() -> anyhow::Result<()> {
    let demo = Demo::start(1).await?;
    let mut c = Client::new(&demo.url);
    for _ in 0..5 {
        assert_eq!(
            c.login("head@riverside.example", "wrong password").await?,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked now, even with the right password.
    let right = demo.password("head@riverside.example");
    assert_eq!(
        c.login("head@riverside.example", &right).await?,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An unknown account fails the same way as a wrong password.
    assert_eq!(
        c.login("nobody@nowhere.example", "x").await?,
        StatusCode::UNAUTHORIZED
    );
    // Other accounts are unaffected.
    let mut other = Client::new(&demo.url);
    let pw = demo.password("it@oakfield.example");
    assert_eq!(
        other.login("it@oakfield.example", &pw).await?,
        StatusCode::SEE_OTHER
    );
    // A forged sign-in form is refused.
    let r = c
        .http
        .post(format!("{}/login", demo.url))
        .form(&[
            ("csrf", "x"),
            ("email", "it@oakfield.example"),
            ("password", pw.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let metrics = c.get("/metrics").await?.text().await?;
    assert!(
        metrics.contains("watchhouse_login_throttled_total 1"),
        "{metrics}"
    );
    let _ = Value::Null;
    Ok(())
}

/// Intelligence routes are by role, not by member: analysts and administrators manage them;
/// partners, analysts and administrators receive shared intelligence; member and force users
/// get neither; nobody gets anything without signing in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intel_roles() -> anyhow::Result<()> {
    let demo = Demo::start(20).await?;
    let http = reqwest::Client::new();
    let emails = [
        "head@riverside.example",
        "office@harbour.example",
        "support@msp.example",
        "officer@northshire.example",
        "analyst@watchhouse.example",
        "admin@watchhouse.example",
        "partner@cert.example",
    ];
    for email in emails {
        let manages = matches!(
            email,
            "analyst@watchhouse.example" | "admin@watchhouse.example"
        );
        let receives = manages || email == "partner@cert.example";
        let c = demo.client(email).await?;
        let code = |ok: bool, good: StatusCode| if ok { good } else { StatusCode::FORBIDDEN };
        for path in [
            "/api/v1/intel/feeds",
            "/api/v1/intel/indicators",
            "/api/v1/intel/check/198.51.100.7",
        ] {
            let (s, _) = c.get_json(path).await?;
            assert_eq!(s, code(manages, StatusCode::OK), "{email}: GET {path}");
        }
        let (s, v) = c
            .post_json(
                "/api/v1/intel/indicators",
                &json!({"value": "203.0.113.200", "tlp": "green"}),
            )
            .await?;
        assert_eq!(
            s,
            code(manages, StatusCode::CREATED),
            "{email}: POST indicator"
        );
        if manages {
            let id = v["id"].as_i64().unwrap();
            let s = c
                .delete(&format!("/api/v1/intel/indicators/{id}"))
                .await?
                .status();
            assert_eq!(s, StatusCode::NO_CONTENT, "{email}: revoke");
        } else {
            assert_eq!(
                c.delete("/api/v1/intel/indicators/1").await?.status(),
                StatusCode::FORBIDDEN
            );
        }
        for path in [
            "/api/v1/intel/export/stix",
            "/api/v1/intel/export/misp/manifest.json",
        ] {
            let r = c.get(path).await?;
            assert_eq!(
                r.status(),
                code(receives, StatusCode::OK),
                "{email}: GET {path}"
            );
        }
        // TAXII with HTTP Basic, as a TAXII client would.
        let r = http
            .get(format!("{}/taxii2/", demo.url))
            .basic_auth(email, Some(demo.password(email)))
            .header("accept", "application/taxii+json;version=2.1")
            .send()
            .await?;
        assert_eq!(
            r.status(),
            code(receives, StatusCode::OK),
            "{email}: TAXII discovery"
        );
        let r = http
            .get(format!("{}/taxii2/", demo.url))
            .basic_auth(email, Some("wrong password"))
            .send()
            .await?;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{email}: wrong password"
        );
    }
    let anon = Client::new(&demo.url);
    for path in [
        "/api/v1/intel/feeds",
        "/api/v1/intel/export/stix",
        "/taxii2/",
        "/taxii2/api/collections/",
    ] {
        assert_eq!(
            anon.get(path).await?.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let r = anon.get("/taxii2/").await?;
    assert!(r.headers().contains_key("www-authenticate"));
    Ok(())
}

/// The area view and the evidence export cover the caller's force, region or the nation, and
/// nothing for members or partners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn area_views_are_scoped() -> anyhow::Result<()> {
    let demo = Demo::start(20).await?;
    for (email, members, title) in [
        ("officer@northshire.example", 2, "Northshire"),
        ("officer@southmoor.example", 1, "Southmoor"),
        ("analyst@watchhouse.example", 3, "National"),
        ("admin@watchhouse.example", 3, "National"),
    ] {
        let c = demo.client(email).await?;
        let (s, v) = c.get_json("/api/v1/evidence?days=7").await?;
        assert_eq!(s, StatusCode::OK, "{email}");
        assert_eq!(v["evidence"]["members"], members, "{email}: {v}");
        assert!(v["area"].as_str().unwrap().contains(title), "{email}: {v}");
        let csv = c.get("/api/v1/evidence?format=csv").await?.text().await?;
        assert!(
            csv.contains(&format!(",30,members,{members}\n")),
            "{email}: {csv}"
        );
        let page = c.get("/area").await?;
        assert_eq!(page.status(), StatusCode::OK, "{email}");
        let html = page.text().await?;
        assert!(
            html.contains("Evidence of need") && html.contains(title),
            "{email}"
        );
    }
    for email in [
        "head@riverside.example",
        "support@msp.example",
        "partner@cert.example",
    ] {
        let c = demo.client(email).await?;
        assert_eq!(
            c.get_json("/api/v1/evidence").await?.0,
            StatusCode::FORBIDDEN,
            "{email}"
        );
        assert_eq!(
            c.get("/area").await?.status(),
            StatusCode::FORBIDDEN,
            "{email}"
        );
    }
    let anon = Client::new(&demo.url);
    assert_eq!(
        anon.get("/api/v1/evidence").await?.status(),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}
