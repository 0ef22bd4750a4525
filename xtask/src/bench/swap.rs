//! `--swap N`: the hot swap of the server being called (issue 24, ADR 0014).
//!
//! The gateway serves HTTP in front of the stdio echo backend while
//! `only1mcp benchmark` keeps 8 `echo__echo` calls in flight, three times
//! for the same length: with the config left alone; while echo's own config
//! changes N times (its arguments, its environment, once its command path: a
//! copy of the program), each replacement started beside the old one; and
//! while N changes each name a replacement that cannot start (a command that
//! does not exist, or one that exits at start-up), so the old one serves on.
//! Writes `target/bench/swap-report.md`; fails if a call failed or a change
//! was not applied as it should be.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::{Bins, Proc, listening_url, loadavg, machine, number, write};

/// Time between two config writes: longer than the watcher's 200 ms
/// debounce, so each write is a reload of its own.
const EVERY: Duration = Duration::from_millis(500);

/// How the echo server is configured in one change.
struct Echo<'a> {
    command: &'a Path,
    name: String,
    generation: u32,
    fail_at_start: bool,
}

impl Echo<'_> {
    fn yaml(&self) -> String {
        let mut text = format!(
            "logging:\n  level: warn\nservers:\n  echo:\n    command: {:?}\n    args: [\"--name\", {:?}]\n    env:\n      SWAP_GEN: \"{}\"\n",
            self.command.display().to_string(),
            self.name,
            self.generation,
        );
        if self.fail_at_start {
            text.push_str("      ONLY1MCP_EXAMPLE_STARTUP_FAIL: \"1\"\n");
        }
        text
    }
}

/// One load run's figures.
struct Run {
    requests: f64,
    failed: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

pub(super) fn swap_run(bins: &Bins, dir: &Path, changes: u32, profile: &str) -> Result<()> {
    let config = dir.join("swap.yaml");
    let copy = dir.join("swap-echo-copy");
    std::fs::copy(&bins.echo, &copy).context("copying the echo server")?;
    let missing = dir.join("swap-no-such-server");
    let first = Echo {
        command: &bins.echo,
        name: "echo-0".to_owned(),
        generation: 0,
        fail_at_start: false,
    };
    write(&config, &first.yaml())?;
    let log = dir.join("swap-gateway.log");
    let proc = Proc::start(
        "gateway",
        Command::new(&bins.gateway)
            .args(["start", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env(
                "RUST_LOG",
                "warn,only1mcp_proxy::http=info,only1mcp_proxy::gateway=info",
            ),
        &log,
        false,
    )?;
    let url = listening_url(&proc, Duration::from_secs(30))?;
    let seconds = (u64::from(changes) * 500).div_ceil(1000) + 3;
    let count = |needle: &str| {
        proc.log_text()
            .lines()
            .filter(|l| l.contains("Config reloaded") && l.contains(needle))
            .count()
    };

    let quiet = load(bins, &url, seconds, |_| Ok(()), changes)?;

    // Good changes: args, env, args, env, …, and the command path once.
    let mut last = first;
    let swapped_before = count(r#"stopped=["echo"]"#);
    let swaps = load(
        bins,
        &url,
        seconds,
        |n| {
            let n = n + 1;
            if n == changes.div_ceil(2) {
                last.command = &copy;
            } else if n % 2 == 0 {
                last.generation = n;
            } else {
                last.name = format!("echo-{n}");
            }
            write(&config, &last.yaml())
        },
        changes,
    )?;
    let swapped = count(r#"stopped=["echo"]"#) - swapped_before;

    // Failing changes: a command that does not exist, one that exits at
    // start-up, in turn; each told apart by its arguments.
    let failed_before = count(r#"kept_previous=["echo"]"#);
    let failing = load(
        bins,
        &url,
        seconds,
        |n| {
            let bad = Echo {
                command: if n % 2 == 0 { &missing } else { &bins.echo },
                name: format!("bad-{n}"),
                generation: 99,
                fail_at_start: n % 2 == 1,
            };
            write(&config, &bad.yaml())
        },
        changes,
    )?;
    let kept = count(r#"kept_previous=["echo"]"#) - failed_before;
    drop(proc);

    let mut report = format!(
        "# Hot swap of the called server under load\n\n\
         `only1mcp benchmark -c 8` on `echo__echo` (HTTP→stdio) for {seconds} s, three times: the config \
         left alone; {changes} changes of echo's own config, one every {} ms (its `args`, its `env`, once its \
         command path), each replacement started beside the old one (make before break); {changes} changes \
         whose replacement cannot start (no such command; exits at start-up), the old one serving on.\n\n\
         | run | changes applied | requests | failed | p50 | p99 | max | p99 / quiet p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        EVERY.as_millis()
    );
    for (label, applied, run) in [
        ("no reloads", "-".to_owned(), &quiet),
        ("swaps", format!("{swapped} swapped"), &swaps),
        (
            "failing replacements",
            format!("{kept} kept previous"),
            &failing,
        ),
    ] {
        let _ = writeln!(
            report,
            "| {label} | {applied} | {} | {} | {:.0} µs | {:.0} µs | {:.1} ms | {:.2} |",
            run.requests,
            run.failed,
            run.p50,
            run.p99,
            run.max / 1000.0,
            run.p99 / quiet.p99,
        );
    }
    let _ = write!(
        report,
        "\n{} Load average {}.\n",
        machine(profile),
        loadavg()
    );
    write(&dir.join("swap-report.md"), &report)?;
    println!("{report}");
    let failed = quiet.failed + swaps.failed + failing.failed;
    if failed > 0.0 {
        bail!("{failed} requests failed; see {}", log.display());
    }
    if swapped < changes as usize || kept < changes as usize {
        bail!(
            "{swapped} of {changes} swaps and {kept} of {changes} refused replacements were logged; see {}",
            log.display()
        );
    }
    Ok(())
}

/// Runs `only1mcp benchmark` for `seconds` against `url`; after its warm-up,
/// calls `change(n)` for n in 0..`changes`, one every [`EVERY`] (none if
/// `change` does nothing).
fn load(
    bins: &Bins,
    url: &str,
    seconds: u64,
    mut change: impl FnMut(u32) -> Result<()>,
    changes: u32,
) -> Result<Run> {
    let load = Command::new(&bins.gateway)
        .args(["benchmark", "--json", "-q", "-c", "8", "--warmup", "1s"])
        .args(["--duration", &format!("{seconds}s"), "--url", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting only1mcp benchmark")?;
    // Past the warm-up, into the measured part.
    std::thread::sleep(Duration::from_millis(1500));
    for n in 0..changes {
        change(n)?;
        std::thread::sleep(EVERY);
    }
    let out = load
        .wait_with_output()
        .context("waiting for the load run")?;
    let json = String::from_utf8_lossy(&out.stdout);
    let failed = [
        "tool_errors",
        "rpc_errors",
        "http_errors",
        "transport_errors",
        "timeouts",
    ]
    .iter()
    .filter_map(|key| number(&json, key))
    .sum();
    let field = |key: &str| {
        number(&json, key).with_context(|| format!("no {key} in the benchmark's report: {json}"))
    };
    Ok(Run {
        requests: field("requests")?,
        failed,
        p50: field("p50")?,
        p99: field("p99")?,
        max: field("max")?,
    })
}
