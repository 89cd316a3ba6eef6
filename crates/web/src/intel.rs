//! The intelligence page for analysts and administrators: feeds and their health, the
//! indicators analysts entered, and the form to add one. Pure rendering.

use maud::{html, Markup};
use watchhouse_store::StoredIndicator;

use crate::{fmt_count, fmt_time, layout, Viewer};

/// One feed, as the page shows it.
pub struct FeedRow<'a> {
    /// Name.
    pub name: &'a str,
    /// Source (credentials removed).
    pub url: &'a str,
    /// Format.
    pub format: &'a str,
    /// Publisher.
    pub provenance: &'a str,
    /// Default category.
    pub category: &'a str,
    /// `ok`, `held`, `failed`, `expired`, `pending`.
    pub status: &'a str,
    /// Why, in words.
    pub message: &'a str,
    /// Entries in use.
    pub entries: usize,
    /// Entries skipped in the last version.
    pub skipped: usize,
    /// Default TLP label.
    pub tlp: &'a str,
    /// Shared onwards.
    pub share: bool,
    /// In member blocklists.
    pub blocklist: bool,
    /// Last successful fetch.
    pub last_success_ms: Option<i64>,
    /// Added in the UI (removable here).
    pub from_ui: bool,
}

/// What the page shows.
pub struct IntelOverview<'a> {
    /// Feeds.
    pub feeds: &'a [FeedRow<'a>],
    /// Analyst indicators, newest first, revoked included.
    pub indicators: &'a [StoredIndicator],
    /// Entries in the matcher.
    pub entries: usize,
    /// A message after a form was sent.
    pub flash: Option<&'a str>,
    /// Now, for expiry.
    pub now_ms: i64,
    /// The viewer may add and remove feeds (administrators).
    pub can_manage_feeds: bool,
}

/// `GET /intel`.
pub fn intel_page(viewer: &Viewer<'_>, o: &IntelOverview<'_>) -> Markup {
    let problems = o.feeds.iter().filter(|f| f.status != "ok").count();
    layout(
        "Intelligence",
        Some(viewer),
        html! {
            span class="caption" { "Threat intelligence" }
            h1 { "Intelligence" }
            @if let Some(m) = o.flash {
                div class="notice" role="status" { (m) }
            }
            @if problems > 0 {
                div class="notice notice-warning" role="alert" {
                    strong { (problems) " " @if problems == 1 { "feed needs" } @else { "feeds need" } " attention." }
                    " The last good version of each stays in use; the table says why."
                }
            }
            p { (fmt_count(o.entries as u64)) " addresses, blocks, domains and URLs are matched against members' traffic." }
            h2 { "Feeds" }
            @if o.feeds.is_empty() {
                p { "No feeds are configured. Add them under " code { "[[hub.feeds]]" } " in the configuration file." }
            } @else {
                table class="table" {
                    caption class="visually-hidden" { "Feeds and their health" }
                    thead { tr {
                        th scope="col" { "Feed" } th scope="col" { "Status" } th scope="col" class="num" { "Entries" }
                        th scope="col" { "Category" } th scope="col" { "TLP" } th scope="col" { "Used for" }
                        th scope="col" { "Last fetched" }
                    } }
                    tbody {
                        @for f in o.feeds {
                            tr {
                                td { strong { (f.name) } br; small { (f.provenance) " · " (f.format) } }
                                td {
                                    @if f.status == "ok" { (f.status) } @else { strong { (f.status) } }
                                    br; small { (f.message) }
                                }
                                td class="num" { (fmt_count(f.entries as u64)) @if f.skipped > 0 { br; small { (fmt_count(f.skipped as u64)) " skipped" } } }
                                td { (f.category) }
                                td { (f.tlp) }
                                td { "matching" @if f.blocklist { ", blocklists" } @if f.share { ", sharing" } }
                                td {
                                    @match f.last_success_ms { Some(t) => (fmt_time(t)), None => "never" }
                                    @if f.from_ui && o.can_manage_feeds {
                                        form method="post" action={ "/intel/feeds/" (f.name) "/delete" } class="inline" {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            " " button type="submit" class="link-button" { "Remove" span class="visually-hidden" { " feed " (f.name) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if o.can_manage_feeds {
                h2 { "Add a feed" }
                p { "Feeds added here are fetched over HTTPS on a schedule, with conditional requests. An update that fails, has no usable entries or shrinks by more than half is held back and shown above." }
                form method="post" action="/intel/feeds" class="stack" {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    div class="field" {
                        label for="feed-name" { "Name (letters, digits, - and _)" }
                        input id="feed-name" name="name" type="text" required pattern="[A-Za-z0-9_-]{1,64}" autocomplete="off";
                    }
                    div class="field" {
                        label for="feed-url" { "Address (https://…)" }
                        input id="feed-url" name="url" type="url" required autocomplete="off" spellcheck="false";
                    }
                    div class="field" {
                        label for="feed-format" { "Format" }
                        select id="feed-format" name="format" {
                            @for (v, l) in [("auto", "Work it out from the content"), ("netset", "IP/CIDR list (FireHOL, Spamhaus DROP text, Tor bulk list)"), ("spamhaus_json", "Spamhaus DROP JSON"), ("feodo_csv", "abuse.ch Feodo Tracker CSV"), ("threatfox_csv", "abuse.ch ThreatFox CSV"), ("urlhaus_csv", "abuse.ch URLhaus CSV"), ("tor_exits", "Tor exit-addresses"), ("domains", "Domain list"), ("stix", "STIX 2.1 bundle"), ("taxii", "TAXII 2.1 collection"), ("misp", "MISP feed")] {
                                option value=(v) { (l) }
                            }
                        }
                    }
                    div class="field" {
                        label for="feed-category" { "Category (blank: from the feed, else attacks)" }
                        input id="feed-category" name="category" type="text" autocomplete="off";
                    }
                    div class="field" {
                        label for="feed-confidence" { "Confidence (0–100)" }
                        input id="feed-confidence" name="confidence" type="number" min="0" max="100" value="50";
                    }
                    div class="field" {
                        label for="feed-tlp" { "Sharing (TLP) of its entries" }
                        select id="feed-tlp" name="tlp" {
                            option value="clear" { "TLP:CLEAR" } option value="green" { "TLP:GREEN" }
                            option value="amber" { "TLP:AMBER" } option value="amber_strict" { "TLP:AMBER+STRICT" }
                            option value="red" { "TLP:RED" }
                        }
                    }
                    div class="checkbox" {
                        input id="feed-blocklist" name="blocklist" type="checkbox" value="on";
                        label for="feed-blocklist" { "Put its addresses in members' blocklists" }
                    }
                    div class="checkbox" {
                        input id="feed-share" name="share" type="checkbox" value="on";
                        label for="feed-share" { "Share its entries with partners (only if its terms allow)" }
                    }
                    button type="submit" class="button" { "Add feed" }
                }
            }
            h2 { "Add an indicator" }
            p { "Indicators you add are matched at once, go into members' blocklists (addresses, up to TLP:AMBER) and are shared with partners within their TLP. TLP:RED is used for matching only and never leaves Watchhouse." }
            form method="post" action="/intel/indicators" class="stack" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                div class="field" {
                    label for="value" { "Address, block, domain or URL" }
                    input id="value" name="value" type="text" required autocomplete="off" spellcheck="false";
                }
                div class="field" {
                    label for="category" { "Category" }
                    input id="category" name="category" type="text" value="attacks" autocomplete="off";
                }
                div class="field" {
                    label for="confidence" { "Confidence (0–100)" }
                    input id="confidence" name="confidence" type="number" min="0" max="100" value="70";
                }
                div class="field" {
                    label for="tlp" { "Sharing (TLP)" }
                    select id="tlp" name="tlp" {
                        option value="clear" { "TLP:CLEAR – anyone" }
                        option value="green" { "TLP:GREEN – the community" }
                        option value="amber" selected { "TLP:AMBER – partners and members, need to know" }
                        option value="amber_strict" { "TLP:AMBER+STRICT – our organisation only" }
                        option value="red" { "TLP:RED – matching only, never shared" }
                    }
                }
                div class="field" {
                    label for="expires_days" { "Expires after (days, 0 = never)" }
                    input id="expires_days" name="expires_days" type="number" min="0" max="3650" value="30";
                }
                div class="field" {
                    label for="description" { "Why (for other analysts)" }
                    input id="description" name="description" type="text" autocomplete="off";
                }
                button type="submit" class="button" { "Add indicator" }
            }
            h2 { "Indicators added by analysts" }
            @if o.indicators.is_empty() {
                p { "None yet." }
            } @else {
                table class="table" {
                    caption class="visually-hidden" { "Analyst indicators" }
                    thead { tr {
                        th scope="col" { "Value" } th scope="col" { "Category" } th scope="col" class="num" { "Confidence" }
                        th scope="col" { "TLP" } th scope="col" { "Expires" } th scope="col" { "Added by" } th scope="col" { "State" }
                    } }
                    tbody {
                        @for i in o.indicators {
                            tr {
                                td { code { (i.value) } @if !i.description.is_empty() { br; small { (i.description) } } }
                                td { (i.category) }
                                td class="num" { (i.confidence) }
                                td { (i.tlp.label()) }
                                td { @match i.valid_until_ms { Some(t) => (fmt_time(t)), None => "never" } }
                                td { (i.created_by) br; small { (fmt_time(i.created_ms)) } }
                                td {
                                    @if i.revoked { "revoked" }
                                    @else if i.valid_until_ms.is_some_and(|t| t <= o.now_ms) { "expired" }
                                    @else {
                                        form method="post" action={ "/intel/indicators/" (i.id) "/revoke" } class="inline" {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            button type="submit" class="link-button" { "Revoke" span class="visually-hidden" { " " (i.value) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
