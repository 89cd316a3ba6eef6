//! Intelligence going out, as STIX 2.1 objects: the indicators Watchhouse may share, the sources
//! seen attacking several members (as indicators with aggregated sightings), the hub's identity
//! and the TLP 2.0 marking definitions. Used by the TAXII server and the bundle and MISP exports.
//!
//! **Invariant: what a recipient gets is filtered by its TLP ceiling here, and the ceiling is
//! never above TLP:AMBER+STRICT** — TLP:RED never leaves, whoever asks. Sightings never name a
//! member: they say how many members saw a source, not which.

use serde_json::{json, Value};
use watchhouse_intel::stix::{
    self, pattern_for, stable_id, timestamp, tlp_marking, tlp_marking_id,
};
use watchhouse_intel::{Cidr, IndicatorValue, Tlp};
use watchhouse_store::{Role, User};

use crate::intel::ShareIndicator;
use crate::AppState;

/// The most restricted TLP a user may receive, or `None` if they may not receive shared
/// intelligence at all. Partners: their own ceiling (default GREEN), at most AMBER. Analysts and
/// administrators: AMBER+STRICT (they are inside the organisation). Never RED.
pub fn ceiling(u: &User) -> Option<Tlp> {
    match u.role {
        Role::Partner => Some(u.max_tlp.unwrap_or(Tlp::Green).min(Tlp::Amber)),
        Role::Analyst | Role::Admin => Some(Tlp::AmberStrict),
        _ => None,
    }
}

/// TLP of the national list of sources seen at several members.
pub const NATIONAL_TLP: Tlp = Tlp::Green;

/// One STIX object with its TAXII bookkeeping.
#[derive(Debug, Clone)]
pub struct StixItem {
    /// STIX id.
    pub id: String,
    /// `modified` (the version).
    pub version: String,
    /// When the hub added this version, ms (TAXII `date_added`).
    pub added_ms: i64,
    /// Object type.
    pub ty: String,
    /// The object.
    pub obj: Value,
}

/// The hub's identity (creator of everything it shares).
pub fn identity_id() -> String {
    stable_id("identity", "watchhouse-hub")
}

const IDENTITY_CREATED_MS: i64 = 1_767_225_600_000; // 2026-01-01
const MARKINGS_CREATED_MS: i64 = 1_664_582_400_000; // 2022-10-01, as OASIS publishes them

fn identity() -> StixItem {
    let ts = timestamp(IDENTITY_CREATED_MS);
    StixItem {
        id: identity_id(),
        version: ts.clone(),
        added_ms: IDENTITY_CREATED_MS,
        ty: "identity".into(),
        obj: json!({
            "type": "identity", "spec_version": "2.1", "id": identity_id(),
            "created": ts, "modified": ts,
            "name": "Watchhouse hub", "identity_class": "organization",
            "description": "Aggregated observations of a Watchhouse cyber alarm service. Members are never named."
        }),
    }
}

fn indicator_type(category: &str) -> &'static str {
    match category {
        "anonymizers" | "tor_exit" | "anonymization" => "anonymization",
        "compromised" => "compromised",
        "reputation" | "spam" => "malicious-activity",
        _ => "malicious-activity",
    }
}

/// The STIX indicator id for a shared value from a feed.
pub fn indicator_id(feed: &str, v: &IndicatorValue) -> String {
    stable_id("indicator", &format!("{feed}|{v}"))
}

fn indicator_object(s: &ShareIndicator) -> StixItem {
    let id = indicator_id(&s.feed, &s.value);
    let created = s.created_ms.min(s.modified_ms);
    let modified = s.modified_ms.max(created);
    let mut o = json!({
        "type": "indicator", "spec_version": "2.1", "id": id,
        "created": timestamp(created), "modified": timestamp(modified),
        "created_by_ref": identity_id(),
        "name": format!("{} listed by {}", s.value, s.feed),
        "description": s.description.clone().unwrap_or_else(|| format!("{} ({}), from {}", s.value, s.category, s.provenance)),
        "indicator_types": [indicator_type(&s.category)],
        "pattern": pattern_for(&s.value), "pattern_type": "stix", "pattern_version": "2.1",
        "valid_from": timestamp(created),
        "confidence": s.confidence,
        "labels": [s.category.clone()],
        "object_marking_refs": [tlp_marking_id(s.tlp)],
    });
    if let Some(u) = s.valid_until_ms.filter(|u| *u > created) {
        o["valid_until"] = json!(timestamp(u));
    }
    if s.revoked {
        o["revoked"] = json!(true);
    }
    StixItem {
        id,
        version: timestamp(modified),
        added_ms: modified,
        ty: "indicator".into(),
        obj: o,
    }
}

fn day_ms(day: i64) -> i64 {
    day * 86_400_000
}

/// Snapshots of [`objects`] per ceiling: (intelligence build time, taken at, objects).
pub type ShareCache =
    std::collections::HashMap<Tlp, (i64, std::time::Instant, std::sync::Arc<Vec<StixItem>>)>;

/// How long a snapshot serves (new national sightings show at most this late).
const SNAPSHOT_SECS: u64 = 10;

/// Every object a recipient with this ceiling may see, ordered by (date added, id); a snapshot
/// at most ten seconds old, and never older than the intelligence in use.
pub async fn objects(
    state: &AppState,
    ceiling: Tlp,
) -> Result<std::sync::Arc<Vec<StixItem>>, crate::error::ApiError> {
    let ceiling = ceiling.min(Tlp::AmberStrict);
    let built = state.intel().built_ms;
    if let Some((b, at, v)) = state
        .share_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&ceiling)
    {
        if *b == built && at.elapsed().as_secs() < SNAPSHOT_SECS {
            return Ok(v.clone());
        }
    }
    let v = std::sync::Arc::new(build_objects(state, ceiling).await?);
    state
        .share_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(ceiling, (built, std::time::Instant::now(), v.clone()));
    Ok(v)
}

async fn build_objects(
    state: &AppState,
    ceiling: Tlp,
) -> Result<Vec<StixItem>, crate::error::ApiError> {
    let intel = state.intel();
    let mut out = vec![identity()];
    let mut used = std::collections::BTreeSet::new();
    let mut ids_by_value: std::collections::HashMap<String, String> =
        std::collections::HashMap::new();
    for s in intel.shareable.iter().filter(|s| s.tlp <= ceiling) {
        used.insert(s.tlp);
        let item = indicator_object(s);
        ids_by_value
            .entry(s.value.to_string())
            .or_insert_with(|| item.id.clone());
        out.push(item);
    }
    // The national list: sources seen at several members, with aggregated sightings.
    if NATIONAL_TLP <= ceiling {
        let since = watchhouse_store::day_of(crate::now_ms()) - state.config.national_days as i64;
        let seen = state
            .store
            .widespread_sources(since, state.config.national_min_members, 10_000)
            .await?;
        if !seen.is_empty() {
            used.insert(NATIONAL_TLP);
        }
        for s in seen {
            let value = IndicatorValue::Ip(Cidr::host(s.ip));
            let first = day_ms(s.first_day);
            let last = day_ms(s.last_day + 1) - 1;
            let ind_id = match ids_by_value.get(&value.to_string()) {
                Some(id) => id.clone(),
                None => {
                    let id = indicator_id("national", &value);
                    let v = timestamp(first);
                    out.push(StixItem {
                        id: id.clone(),
                        version: v.clone(),
                        added_ms: first,
                        ty: "indicator".into(),
                        obj: json!({
                            "type": "indicator", "spec_version": "2.1", "id": id,
                            "created": v, "modified": v, "created_by_ref": identity_id(),
                            "name": format!("{} attacked several Watchhouse members", s.ip),
                            "description": "A source address seen attacking several members of a Watchhouse cyber alarm service.",
                            "indicator_types": ["malicious-activity"],
                            "pattern": pattern_for(&value), "pattern_type": "stix", "pattern_version": "2.1",
                            "valid_from": v, "confidence": 60, "labels": ["attacks"],
                            "object_marking_refs": [tlp_marking_id(NATIONAL_TLP)],
                        }),
                    });
                    id
                }
            };
            let sid = stable_id("sighting", &format!("national|{}|{}", s.ip, s.first_day));
            let v = timestamp(last.max(first));
            out.push(StixItem {
                id: sid.clone(),
                version: v.clone(),
                added_ms: last,
                ty: "sighting".into(),
                obj: json!({
                    "type": "sighting", "spec_version": "2.1", "id": sid,
                    "created": timestamp(first), "modified": v, "created_by_ref": identity_id(),
                    "description": format!("Seen by {} members (members are not named).", s.members),
                    "first_seen": timestamp(first), "last_seen": timestamp(last),
                    "count": s.events.min(999_999_999),
                    "sighting_of_ref": ind_id,
                    "where_sighted_refs": [identity_id()],
                    "object_marking_refs": [tlp_marking_id(NATIONAL_TLP)],
                }),
            });
        }
    }
    for t in used {
        out.push(StixItem {
            id: tlp_marking_id(t).to_owned(),
            version: "2022-10-01T00:00:00.000Z".into(),
            added_ms: MARKINGS_CREATED_MS,
            ty: "marking-definition".into(),
            obj: tlp_marking(t),
        });
    }
    out.sort_by(|a, b| a.added_ms.cmp(&b.added_ms).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// A STIX 2.1 bundle of everything a recipient with this ceiling may see.
pub async fn bundle(state: &AppState, ceiling: Tlp) -> Result<Value, crate::error::ApiError> {
    let objs = objects(state, ceiling).await?;
    Ok(json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Uuid::new_v4()),
        "objects": objs.iter().map(|o| o.obj.clone()).collect::<Vec<_>>(),
    }))
}

/// A MISP feed of the same content: one event per source feed (and one for the national list),
/// `manifest.json` and `hashes.csv`. Returns (file name, body) pairs.
pub async fn misp_feed(
    state: &AppState,
    ceiling: Tlp,
) -> Result<Vec<(String, Vec<u8>)>, crate::error::ApiError> {
    let objs = objects(state, ceiling).await?;
    let intel = state.intel();
    // Group the indicators by feed.
    let mut events: std::collections::BTreeMap<String, Vec<(IndicatorValue, Tlp, String, i64)>> =
        Default::default();
    for s in intel
        .shareable
        .iter()
        .filter(|s| s.tlp <= ceiling.min(Tlp::AmberStrict) && !s.revoked)
    {
        events.entry(s.feed.clone()).or_default().push((
            s.value.clone(),
            s.tlp,
            s.category.clone(),
            s.modified_ms,
        ));
    }
    for o in objs
        .iter()
        .filter(|o| o.ty == "indicator" && o.id.starts_with("indicator--"))
    {
        if o.obj["labels"][0] == "attacks"
            && o.obj["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("attacked several Watchhouse members"))
        {
            if let Ok(v) = stix::parse_pattern(o.obj["pattern"].as_str().unwrap_or("")) {
                for v in v {
                    events.entry("national".into()).or_default().push((
                        v,
                        NATIONAL_TLP,
                        "attacks".into(),
                        o.added_ms,
                    ));
                }
            }
        }
    }
    let mut files = Vec::new();
    let mut manifest = serde_json::Map::new();
    let mut hashes = String::new();
    for (feed, attrs) in events {
        let uuid = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("watchhouse-misp|{feed}").as_bytes(),
        )
        .to_string();
        let ts = attrs.iter().map(|a| a.3).max().unwrap_or(0) / 1000;
        let tlp = attrs.iter().map(|a| a.1).max().unwrap_or(Tlp::Clear);
        let tag = format!(
            "tlp:{}",
            match tlp {
                Tlp::Clear => "clear",
                Tlp::Green => "green",
                Tlp::Amber => "amber",
                Tlp::AmberStrict => "amber+strict",
                Tlp::Red => "red",
            }
        );
        let date = timestamp(ts * 1000)[..10].to_owned();
        let info = format!("Watchhouse: {feed}");
        let mut list = Vec::with_capacity(attrs.len());
        for (v, _, category, at) in &attrs {
            let (ty, value) = match v {
                IndicatorValue::Ip(c) => ("ip-src", c.to_string()),
                IndicatorValue::Domain(d) => ("domain", d.clone()),
                IndicatorValue::Url(u) => ("url", u.clone()),
            };
            let auuid = uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("{uuid}|{value}").as_bytes(),
            );
            hashes.push_str(&format!(
                "{},{uuid}\n",
                hex::encode(md5_digest(value.as_bytes()))
            ));
            list.push(json!({
                "uuid": auuid.to_string(), "type": ty, "category": "Network activity",
                "to_ids": true, "value": value, "timestamp": (at / 1000).to_string(),
                "comment": category,
            }));
        }
        let event = json!({"Event": {
            "uuid": uuid, "info": info, "date": date, "timestamp": ts.to_string(),
            "published": true, "analysis": "2", "threat_level_id": "3",
            "Orgc": {"name": "Watchhouse", "uuid": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, b"watchhouse-org").to_string()},
            "Tag": [{"name": tag}],
            "Attribute": list,
        }});
        manifest.insert(
            uuid.clone(),
            json!({
                "info": info, "date": date, "timestamp": ts.to_string(), "analysis": "2",
                "threat_level_id": "3", "published": true, "Tag": [{"name": tag}],
                "Orgc": {"name": "Watchhouse"}
            }),
        );
        files.push((
            format!("{uuid}.json"),
            serde_json::to_vec(&event).unwrap_or_default(),
        ));
    }
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&Value::Object(manifest)).unwrap_or_default(),
    ));
    files.push(("hashes.csv".into(), hashes.into_bytes()));
    Ok(files)
}

/// MD5, as MISP's `hashes.csv` uses it (for lookups, not security).
fn md5_digest(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        assert_eq!(
            hex::encode(md5_digest(b"")),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hex::encode(md5_digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex::encode(md5_digest(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn ceilings_never_reach_red() {
        let mut u = User {
            id: 1,
            email: "p@x".into(),
            name: "p".into(),
            role: Role::Partner,
            force_id: None,
            region: None,
            member_ids: vec![],
            max_tlp: Some(Tlp::Red),
        };
        assert_eq!(ceiling(&u), Some(Tlp::Amber));
        u.max_tlp = None;
        assert_eq!(ceiling(&u), Some(Tlp::Green));
        u.role = Role::Admin;
        assert_eq!(ceiling(&u), Some(Tlp::AmberStrict));
        u.role = Role::MemberAdmin;
        assert_eq!(ceiling(&u), None);
    }
}
