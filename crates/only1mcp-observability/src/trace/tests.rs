use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use serde_json::value::RawValue;

use super::*;

fn span(state: &str) -> SpanContext {
    SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        state.parse::<TraceState>().unwrap(),
    )
}

#[test]
fn injection_sets_the_trace_context_in_meta_and_keeps_every_other_byte() {
    let params = RawValue::from_string(
        r#"{"name":"read","arguments":{"path":"/x"},"_meta":{"progressToken":7,"traceparent":"00-old-old-01","tracestate":"old=1"}}"#
            .to_owned(),
    )
    .unwrap();
    let out = inject_meta(Some(&params), &span("")).unwrap().unwrap();
    assert_eq!(
        out.get(),
        r#"{"name":"read","arguments":{"path":"/x"},"_meta":{"progressToken":7,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}"#
    );
    let out = inject_meta(None, &span("rojo=1")).unwrap().unwrap();
    assert_eq!(
        out.get(),
        r#"{"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"rojo=1"}}"#
    );
}

#[test]
fn extraction_takes_a_valid_traceparent_and_ignores_a_malformed_one() {
    let carrier = Carrier {
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        tracestate: Some("rojo=1"),
    };
    let parent = extract(&carrier).unwrap();
    assert!(parent.is_remote() && !parent.is_sampled());
    assert_eq!(parent.trace_state().header(), "rojo=1");
    for bad in [
        "",
        "00-xyz",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let carrier = Carrier {
            traceparent: Some(bad),
            tracestate: None,
        };
        assert!(extract(&carrier).is_none(), "{bad}");
    }
    assert!(extract(&Carrier::default()).is_none());
}

#[test]
fn sampling_thresholds_cover_never_always_and_a_share() {
    assert_eq!(threshold(0.0), 0);
    assert_eq!(threshold(1.0), u64::MAX);
    let quarter = threshold(0.25);
    let n_sampled = (0..100_000).filter(|_| next_random() < quarter).count();
    assert!((23_000..27_000).contains(&n_sampled), "{n_sampled}");
}
