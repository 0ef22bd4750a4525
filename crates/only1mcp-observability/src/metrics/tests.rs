use std::time::Duration;

use only1mcp_core::Error;
use only1mcp_core::catalog::{Catalog, Lists, Prefix, Route, ServerListing, ToolFilter};
use only1mcp_core::jsonrpc::ErrorObject;
use only1mcp_core::mcp::{Era, RawObject};
use only1mcp_core::naming::Namespace;
use only1mcp_core::pipeline::{Reply, Routed};
use only1mcp_core::upstream::Call;
use serde_json::value::RawValue;
use tower::{Layer as _, Service, ServiceExt as _};

use super::*;

fn catalog(server: &str, tools: &[&str]) -> Catalog {
    let tools = tools
        .iter()
        .map(|t| {
            serde_json::from_value::<RawObject>(serde_json::json!({"name": t, "inputSchema": {}}))
                .unwrap()
        })
        .collect();
    let listing = ServerListing {
        server: server.into(),
        prefix: Prefix::resolve(Default::default(), Some(false)),
        filter: ToolFilter::new(&Default::default()).unwrap(),
        lists: Lists {
            tools,
            ..Lists::default()
        },
    };
    Catalog::build(&[listing], &Namespace::default())
}

fn routed(server: &str, tool: &str) -> Routed {
    let mut routed = Routed::new(
        Call::new("tools/call", None),
        Route {
            server: server.into(),
            name: tool.into(),
        },
        Era::Legacy,
    );
    routed.exposed = Some(tool.into());
    routed
}

fn answer(text: &str) -> Result<Reply, Error> {
    Ok(Reply {
        era: Era::Legacy,
        outcome: Ok(RawValue::from_string(text.to_owned()).unwrap()),
    })
}

/// A backend that answers each call with what the tool's name asks for.
fn backend() -> impl Service<Routed, Response = Reply, Error = Error, Future: Send> + Clone {
    tower::service_fn(|routed: Routed| async move {
        match routed.route.name.as_ref() {
            "fails" => Ok(Reply {
                era: Era::Legacy,
                outcome: Err(ErrorObject::new(-32602, "bad")),
            }),
            "broken" => answer(r#"{"content":[],"isError":true}"#),
            "slow" => {
                tokio::time::sleep(Duration::from_millis(30)).await;
                answer("{}")
            }
            "refused" => Err(Error::RateLimited { retry_after: None }),
            _ => answer("{}"),
        }
    })
}

fn line<'a>(page: &'a str, prefix: &str) -> Option<&'a str> {
    page.lines().find(|l| l.starts_with(prefix))
}

#[tokio::test]
async fn calls_are_counted_by_server_tool_and_error_type() {
    let metrics = Metrics::new();
    metrics.set_catalog(&catalog(
        "fs",
        &["read", "fails", "broken", "slow", "refused"],
    ));
    let mut svc = metrics.layer().layer(backend());
    for tool in [
        "read",
        "read",
        "fails",
        "broken",
        "slow",
        "refused",
        "not-listed",
    ] {
        let _ = svc.ready().await.unwrap().call(routed("fs", tool)).await;
    }
    let page = metrics.render(&GatewayState::default());
    let count = |labels: &str| {
        let prefix = format!("mcp_client_operation_duration_seconds_count{{{labels}}} ");
        line(&page, &prefix).map(|l| l[prefix.len()..].to_owned())
    };
    let base = "server=\"fs\",mcp_method_name=\"tools/call\"";
    assert_eq!(
        count(&format!("{base},gen_ai_tool_name=\"read\",error_type=\"\"")).as_deref(),
        Some("2")
    );
    assert_eq!(
        count(&format!(
            "{base},gen_ai_tool_name=\"fails\",error_type=\"-32602\""
        ))
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        count(&format!(
            "{base},gen_ai_tool_name=\"broken\",error_type=\"tool_error\""
        ))
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        count(&format!(
            "{base},gen_ai_tool_name=\"refused\",error_type=\"rate_limited\""
        ))
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        count(&format!(
            "{base},gen_ai_tool_name=\"_OTHER\",error_type=\"\""
        ))
        .as_deref(),
        Some("1")
    );
    // The slow call is over 25 ms: not in the 25 ms bucket, in the 50 ms one.
    let bucket = |le: &str| {
        let prefix = format!(
            "mcp_client_operation_duration_seconds_bucket{{{base},gen_ai_tool_name=\"slow\",error_type=\"\",le=\"{le}\"}} "
        );
        line(&page, &prefix).map(|l| l[prefix.len()..].to_owned())
    };
    assert_eq!(bucket("0.025").as_deref(), Some("0"));
    assert_eq!(bucket("0.05").as_deref(), Some("1"));
}

#[tokio::test]
async fn a_catalog_change_keeps_the_counts_of_tools_still_listed() {
    let metrics = Metrics::new();
    metrics.set_catalog(&catalog("fs", &["read", "write"]));
    let mut svc = metrics.layer().layer(backend());
    for tool in ["read", "write"] {
        let _ = svc.ready().await.unwrap().call(routed("fs", tool)).await;
    }
    metrics.set_catalog(&catalog("fs", &["read"]));
    let _ = svc.ready().await.unwrap().call(routed("fs", "read")).await;
    let page = metrics.render(&GatewayState::default());
    assert!(
        page.contains("gen_ai_tool_name=\"read\",error_type=\"\"} 2\n"),
        "{page}"
    );
    assert!(!page.contains("gen_ai_tool_name=\"write\""), "{page}");
}

#[tokio::test]
async fn unknown_tool_names_leave_the_series_count_bounded() {
    let metrics = Metrics::new();
    metrics.set_catalog(&catalog("fs", &["read"]));
    let mut svc = metrics.layer().layer(backend());
    let _ = svc.ready().await.unwrap().call(routed("fs", "read")).await;
    let before = metrics.render(&GatewayState::default()).lines().count();
    for n in 0..2000 {
        let _ = svc
            .ready()
            .await
            .unwrap()
            .call(routed("fs", &format!("random-{n}")))
            .await;
        let _ = svc
            .ready()
            .await
            .unwrap()
            .call(routed(&format!("server-{n}"), "read"))
            .await;
        metrics
            .server_op(&format!("x/{n}"))
            .finish(&Ok(RawValue::from_string("{}".into()).unwrap()));
    }
    let page = metrics.render(&GatewayState::default());
    // At most the three folded series (_OTHER tool, _OTHER server, _OTHER
    // method), each one histogram.
    assert!(
        page.lines().count() <= before + 3 * 22,
        "{} > {}",
        page.lines().count(),
        before
    );
    assert!(!page.contains("random-"));
    assert!(!page.contains("server-1"));
}

#[test]
fn windows_report_rate_quantiles_and_errors_per_server() {
    let metrics = Metrics::new();
    metrics.set_catalog(&catalog("fs", &["read"]));
    let tracker = |tool: &str| metrics.track(&routed("fs", tool));
    for _ in 0..9 {
        tracker("read").finish(&answer("{}"));
    }
    tracker("read").finish(&Err(Error::UpstreamTimedOut {
        server: "fs".into(),
        after: Duration::from_secs(1),
    }));
    let windows = metrics.windows();
    let fs = windows.iter().find(|w| &*w.server == "fs").unwrap();
    assert_eq!((fs.calls, fs.errors), (10, 1));
    assert_eq!(fs.error_rate(), Some(0.1));
    assert!(fs.p50.is_some() && fs.p99 >= fs.p50);
    metrics.tick();
    let fs = metrics
        .windows()
        .into_iter()
        .find(|w| &*w.server == "fs")
        .unwrap();
    assert_eq!(fs.calls, 10, "the oldest sample is still the first");
}
