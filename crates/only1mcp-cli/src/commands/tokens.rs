//! `only1mcp tokens`: where the context goes. Starts the configured servers,
//! counts the tokens of every tool as the client receives it (o200k_base),
//! per server and per mode, then stops them.
//!
//! Every total is the token count of the exact JSON array a client gets as
//! `result.tools` from `tools/list` in that mode (unpaginated); per-tool
//! counts are of each item alone, so they do not add up to the total to the
//! token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use only1mcp_core::catalog::Entry;
use only1mcp_core::config::{ContextMode, ProfileConfig};
use only1mcp_core::mcp::ListKind;
use only1mcp_proxy::context::{self, ProfileReport, Views, tokens};
use only1mcp_proxy::gateway::Gateway;
use serde::Serialize;

use crate::output;

/// `only1mcp tokens` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct TokensArgs {
    /// The config file (default: as for `start`).
    #[arg(long, short, env = "ONLY1MCP_CONFIG")]
    config: Option<PathBuf>,
    /// Report only this mode beside `full` (full, compact, discover, auto).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<ContextMode>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn parse_mode(s: &str) -> Result<ContextMode, String> {
    s.parse()
}

#[derive(Debug, Serialize)]
struct ToolRow {
    name: String,
    server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias_of: Option<String>,
    full: usize,
    compact: usize,
}

#[derive(Debug, Serialize)]
struct ServerRow {
    server: String,
    tools: usize,
    full: usize,
    compact: usize,
}

#[derive(Debug, Serialize)]
struct ModeRow {
    mode: ContextMode,
    effective_mode: ContextMode,
    tools_listed: usize,
    tokens: usize,
    saving_percent: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    encoding: &'static str,
    servers: Vec<ServerRow>,
    tools: Vec<ToolRow>,
    modes: Vec<ModeRow>,
    profiles: Vec<ProfileReport>,
}

/// The name a mode's probe profile gets (never a user profile's name: it has
/// a character profile names may not use).
fn probe_name(mode: ContextMode) -> String {
    format!("mode:{mode}")
}

fn saving(full: usize, tokens: usize) -> f64 {
    if full == 0 {
        return 0.0;
    }
    let saved = full.saturating_sub(tokens) as f64 / full as f64 * 100.0;
    (saved * 10.0).round() / 10.0
}

/// `only1mcp tokens`.
pub(crate) async fn tokens(args: TokensArgs) -> ExitCode {
    let (mut config, _origin) = match super::load_or_report(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    super::quiet_logging(&mut config);
    let gateway = Gateway::start(&config).await;
    let catalog = gateway.catalog();
    let modes: Vec<ContextMode> = match args.mode {
        None => ContextMode::ALL.to_vec(),
        Some(ContextMode::Full) => vec![ContextMode::Full],
        Some(mode) => vec![ContextMode::Full, mode],
    };
    // One probe profile per mode, over the whole catalog, beside the
    // configured profiles.
    let mut probe = config.clone();
    for mode in &modes {
        probe.context.profiles.insert(
            probe_name(*mode),
            ProfileConfig {
                mode: Some(*mode),
                ..ProfileConfig::default()
            },
        );
    }
    let counted = tokio::task::spawn_blocking(move || {
        let views = Views::build(catalog.clone(), &probe, None);
        let reports = views.report();
        let rows = tool_rows(catalog.entries(ListKind::Tools), &probe.context);
        (reports, rows)
    })
    .await;
    gateway.shutdown().await;
    let Ok((reports, tools)) = counted else {
        output::error("counting tokens failed");
        return ExitCode::FAILURE;
    };
    let mut servers: BTreeMap<&str, ServerRow> = BTreeMap::new();
    for row in &tools {
        let entry = servers.entry(&row.server).or_insert_with(|| ServerRow {
            server: row.server.clone(),
            tools: 0,
            full: 0,
            compact: 0,
        });
        entry.tools += 1;
        entry.full += row.full;
        entry.compact += row.compact;
    }
    let (probes, profiles): (Vec<ProfileReport>, Vec<ProfileReport>) = reports
        .into_iter()
        .partition(|r| r.profile.starts_with("mode:"));
    let full = probes.first().map_or(0, |r| r.tokens_full);
    let modes: Vec<ModeRow> = modes
        .iter()
        .filter_map(|mode| probes.iter().find(|r| r.profile == probe_name(*mode)))
        .map(|r| ModeRow {
            mode: r.mode,
            effective_mode: r.effective_mode,
            tools_listed: r.tools_listed,
            tokens: r.tokens_listed,
            saving_percent: saving(full, r.tokens_listed),
        })
        .collect();
    let report = Report {
        encoding: tokens::ENCODING,
        servers: servers.into_values().collect(),
        tools,
        modes,
        profiles,
    };
    if args.json {
        output::json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        print_tables(&report);
    }
    ExitCode::SUCCESS
}

fn tool_rows(entries: &[Entry], context: &only1mcp_core::config::ContextConfig) -> Vec<ToolRow> {
    entries
        .iter()
        .map(|entry| ToolRow {
            name: entry.exposed.to_string(),
            server: entry.route.server.to_string(),
            alias_of: entry.alias_of.as_deref().map(str::to_owned),
            full: tokens::count(entry.item.get()),
            compact: tokens::count(context::compacted(entry, context).item.get()),
        })
        .collect()
}

fn print_tables(report: &Report) {
    let tool_rows: Vec<Vec<String>> = report
        .tools
        .iter()
        .map(|t| {
            vec![
                t.server.clone(),
                t.name.clone(),
                t.full.to_string(),
                t.compact.to_string(),
            ]
        })
        .collect();
    output::line(&output::table(
        &["SERVER", "TOOL", "FULL", "COMPACT"],
        &tool_rows,
    ));
    let server_rows: Vec<Vec<String>> = report
        .servers
        .iter()
        .map(|s| {
            vec![
                s.server.clone(),
                s.tools.to_string(),
                s.full.to_string(),
                s.compact.to_string(),
            ]
        })
        .collect();
    output::line("");
    output::line(&output::table(
        &["SERVER", "TOOLS", "FULL", "COMPACT"],
        &server_rows,
    ));
    let mode_rows: Vec<Vec<String>> = report
        .modes
        .iter()
        .map(|m| {
            let mode = if m.mode == m.effective_mode {
                m.mode.to_string()
            } else {
                format!("{} → {}", m.mode, m.effective_mode)
            };
            vec![
                mode,
                m.tools_listed.to_string(),
                m.tokens.to_string(),
                format!("{:.1}%", m.saving_percent),
            ]
        })
        .collect();
    output::line("");
    output::line(&output::table(
        &["MODE", "LISTED", "TOKENS", "SAVED"],
        &mode_rows,
    ));
    let aliases: Vec<Vec<String>> = report
        .tools
        .iter()
        .filter_map(|t| Some(vec![t.name.clone(), t.alias_of.clone()?]))
        .collect();
    if !aliases.is_empty() {
        output::line("");
        output::line(&output::table(&["ALIAS", "STANDS FOR"], &aliases));
    }
    for p in &report.profiles {
        output::note(&format!(
            "profile {}: {} ({} tools, {} tokens)",
            p.profile, p.effective_mode, p.tools_listed, p.tokens_listed
        ));
    }
    output::note(&format!(
        "tokens of the JSON each client receives, encoding {}",
        report.encoding
    ));
}
