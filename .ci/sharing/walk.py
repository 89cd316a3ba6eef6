"""Validates Watchhouse's shared intelligence with the OASIS reference tools.

1. stix2-validator 3.2.0 validates every exported bundle: the STIX export for an analyst and for
   a partner, and a bundle of everything the TAXII server serves.
2. taxii2-client walks the TAXII server end to end: discovery -> API root -> collections ->
   paginated objects -> manifest -> add objects -> poll status.

Usage: walk.py HUB_URL CREDENTIALS_JSON ANALYST_TOKEN
"""

import json
import sys
import time
import uuid

import requests
import stix2validator
from taxii2client.v21 import Server, as_pages

url, creds_path, token = sys.argv[1], sys.argv[2], sys.argv[3]
creds = json.load(open(creds_path))
pw = {u["email"]: u["password"] for u in creds["users"]}
partner = "partner@cert.example"
failed = False


def check_bundle(name, text):
    global failed
    bundle = json.loads(text)
    kinds = sorted({o["type"] for o in bundle["objects"]})
    results = stix2validator.validate_string(text, stix2validator.ValidationOptions(version="2.1", strict=False))
    print(f"stix2-validator: {name}: {len(bundle['objects'])} objects {kinds}: {'valid' if results.is_valid else 'INVALID'}")
    for r in getattr(results, "object_results", [results]):
        for e in r.errors:
            print(f"  error {r.object_id}: {e}")
        for w in r.warnings:
            print(f"  warning {r.object_id}: {w}")
    if not results.is_valid:
        failed = True
    return bundle


# --- exports, validated --------------------------------------------------------------------
analyst = {"Authorization": f"Bearer {token}"}
# An analyst shares an address, a block, a domain and a URL (with a quote, to exercise escaping).
for value, tlp in [
    ("203.0.113.45", "green"),
    ("198.18.0.0/15", "clear"),
    ("c2.evil.example", "amber"),
    ("http://dl.evil.example/it's/payload.exe", "green"),
    ("203.0.113.46", "red"),
]:
    r = requests.post(f"{url}/api/v1/intel/indicators", headers=analyst,
                      json={"value": value, "tlp": tlp, "category": "botnet_c2", "description": "CI"})
    assert r.status_code == 201, (r.status_code, r.text)

# The hub rebuilds its intelligence in the background; wait for the new indicators, and for the
# simulator to have made a sighting (a source seen at two members).
deadline = time.time() + 120
while True:
    listed = requests.get(f"{url}/api/v1/intel/check/c2.evil.example", headers=analyst).json()["listed"]
    text = requests.get(f"{url}/api/v1/intel/export/stix", headers=analyst).text
    if listed and '"sighting"' in text:
        break
    assert time.time() < deadline, f"no indicators or sightings after 120 s: listed={listed}"
    time.sleep(1)

b = check_bundle("export for an analyst", requests.get(f"{url}/api/v1/intel/export/stix", headers=analyst).text)
assert "203.0.113.46" not in json.dumps(b), "TLP:RED left through the export"
patterns = " ".join(o.get("pattern", "") for o in b["objects"])
for p in ["ipv4-addr:value =", "ISSUBSET", "domain-name:value", "url:value"]:
    assert p in patterns, f"no {p} pattern exported"
check_bundle("export for a partner", requests.get(f"{url}/api/v1/intel/export/stix", auth=(partner, pw[partner])).text)

# --- TAXII, walked with taxii2-client --------------------------------------------------------
server = Server(f"{url}/taxii2/", user=partner, password=pw[partner])
print(f"taxii2-client: discovery: {server.title!r}, {len(server.api_roots)} API root(s)")
root = server.api_roots[0]
print(f"taxii2-client: API root {root.url}: versions {root.versions}, max_content_length {root.max_content_length}")
cols = root.collections
print(f"taxii2-client: collections: {[(c.title, c.can_read, c.can_write) for c in cols]}")
readable = next(c for c in cols if c.can_read)
writable = next(c for c in cols if c.can_write)
objects, pages = [], 0
for envelope in as_pages(readable.get_objects, per_request=3):
    pages += 1
    objects.extend(envelope.get("objects", []))
print(f"taxii2-client: {len(objects)} objects in {pages} pages of at most 3")
assert pages >= 2 and objects, "pagination was not exercised"
assert len({o["id"] for o in objects}) == len(objects), "an object was repeated across pages"
manifest = readable.get_manifest()
print(f"taxii2-client: manifest: {len(manifest.get('objects', []))} entries")
assert {m["id"] for m in manifest["objects"]} >= {o["id"] for o in objects[:5]}
one = readable.get_object(objects[0]["id"])
assert one["objects"][0]["id"] == objects[0]["id"]
check_bundle("everything the TAXII server serves a partner",
             json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}))
assert "203.0.113.46" not in json.dumps(objects)

new_id = f"indicator--{uuid.uuid4()}"
envelope = {"objects": [{
    "type": "indicator", "spec_version": "2.1", "id": new_id,
    "created": "2026-11-21T00:00:00.000Z", "modified": "2026-11-21T00:00:00.000Z",
    "name": "CI partner submission", "pattern": "[ipv4-addr:value = '192.0.2.77']",
    "pattern_type": "stix", "valid_from": "2026-11-21T00:00:00.000Z",
}]}
status = writable.add_objects(json.dumps(envelope), wait_for_completion=False)
print(f"taxii2-client: add objects: status {status.id}: {status.status}, {status.success_count} ok")
status.refresh()
print(f"taxii2-client: poll status: {status.status}, successes {[s['id'] for s in status.successes]}")
assert status.status == "complete" and status.success_count == 1 and status.failure_count == 0

if failed:
    sys.exit("validation failed")
print("OK: bundles valid, TAXII walk complete")
