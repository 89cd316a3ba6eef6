//! `watchhouse report`: member reports from the command line, one member or all, as PDF, HTML
//! or JSON, with a progress bar when there are many.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use watchhouse_store::Scope;
use watchhouse_web::report::Period;

/// Arguments of `watchhouse report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The member's id, or `all` for every member (one file each in --out, a directory).
    #[arg(long)]
    member: String,
    /// 2026-W47 (an ISO week), 2026-11 (a month) or 2026-11-01..2026-11-14; default last week.
    #[arg(long)]
    period: Option<String>,
    /// pdf, html or json.
    #[arg(long, default_value = "pdf")]
    format: String,
    /// The file to write (a directory with --member all).
    #[arg(long)]
    out: PathBuf,
    /// Data directory of the hub (overrides hub.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL, e.g. postgres://wh@db/watchhouse in scale-out mode (overrides hub.database).
    #[arg(long)]
    database: Option<String>,
}

/// Runs `watchhouse report`.
pub async fn run(a: ReportArgs, mut cfg: watchhouse_hub::HubConfig) -> Result<()> {
    if let Some(d) = a.data_dir {
        cfg.data_dir = d;
    }
    if let Some(d) = a.database {
        cfg.database = d;
    }
    if !matches!(a.format.as_str(), "pdf" | "html" | "json") {
        bail!("--format {}: use pdf, html or json", a.format);
    }
    let period = match &a.period {
        Some(p) => Period::parse(p).map_err(anyhow::Error::msg)?,
        None => Period::last_week(watchhouse_store::day_of(watchhouse_hub::now_ms())),
    };
    let store = watchhouse_store::open(&cfg.database_url())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                watchhouse_store::redact_url(&cfg.database_url())
            )
        })?;
    // The matcher, for what intelligence says of the top sources.
    let files = cfg
        .open_files()
        .with_context(|| format!("cannot open the file store {}", cfg.files_url()))?;
    let feeds = watchhouse_hub::intel::feeds::initial(&cfg.feeds, &files, &cfg.feed_ca_file).await;
    let now = watchhouse_hub::now_ms();
    let sources: Vec<_> = feeds.iter().map(|f| f.source(now)).collect();
    let intel = watchhouse_hub::intel::build(&sources, now);
    let asn = watchhouse_hub::load_asn_table(&cfg.asn_db);
    let members: Vec<i64> = if a.member == "all" {
        store
            .list_members(&Scope::All)
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect()
    } else {
        vec![a
            .member
            .parse()
            .with_context(|| format!("--member {}: a member id or `all`", a.member))?]
    };
    let many = a.member == "all";
    if many {
        std::fs::create_dir_all(&a.out)
            .with_context(|| format!("cannot create {}", a.out.display()))?;
    }
    let bar = indicatif::ProgressBar::new(members.len() as u64);
    if many {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} reports {bar:30} {pos}/{len} {msg} ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for id in members {
        let r = watchhouse_hub::report::gather(
            store.as_ref(),
            &intel,
            asn.as_ref(),
            &Scope::All,
            id,
            &period,
            now,
        )
        .await?
        .with_context(|| format!("no member {id}: see `watchhouse admin member list`"))?;
        bar.set_message(r.member_name.clone());
        let body = match a.format.as_str() {
            "pdf" => watchhouse_web::report::report_pdf(&r),
            "html" => watchhouse_web::report::report_page(None, &r)
                .into_string()
                .into_bytes(),
            _ => serde_json::to_vec_pretty(&r)?,
        };
        let path = if many {
            a.out.join(format!(
                "member-{id}-{}.{}",
                period.label.replace("..", "_"),
                a.format
            ))
        } else {
            a.out.clone()
        };
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
        bar.inc(1);
        if !many {
            println!(
                "{}: report for {} ({}) written",
                path.display(),
                r.member_name,
                period.label
            );
        }
    }
    bar.finish_and_clear();
    if many {
        println!(
            "{} reports for {} written to {}",
            bar.position(),
            period.label,
            a.out.display()
        );
    }
    Ok(())
}
