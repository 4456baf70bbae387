use super::*;

#[test]
fn a_report_saved_before_reasons_had_a_type_still_reads() {
    // As versions before `stop` wrote it: the reason as a message in `error`.
    let old = serde_json::json!({
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:09Z",
        "full": false,
        "listed": 3, "new": 1, "updated": 0, "unchanged": 2, "failed": 0,
        "failures": [], "deleted_remotely": 0, "flags_updated": 0,
        "attachments": 0, "attachments_failed": 0, "requests": 4, "seconds": 9.0,
        "frontier": null,
        "error": "session expired: run `convos auth` with a fresh cookie from chatgpt.com",
        "degraded": []
    });
    let r: SyncReport = serde_json::from_value(old).expect("an old report reads");
    assert_eq!(r.new, 1);
    assert_eq!(
        r.stop,
        Some(StopReason::Recorded {
            message: "session expired: run `convos auth` with a fresh cookie from chatgpt.com"
                .into()
        })
    );
    assert!(r.failed(), "it stopped");
    // A message is not classified: only a typed reason drives re-authentication.
    assert!(!r.session_died());
    // Older still: no `error` key at all, or a null one.
    let r: SyncReport =
        serde_json::from_value(serde_json::json!({"started_at": "x", "finished_at": "y",
            "full": true, "listed": 0, "new": 0, "updated": 0, "unchanged": 0, "failed": 0,
            "failures": [], "deleted_remotely": 0, "flags_updated": 0, "attachments": 0,
            "attachments_failed": 0, "requests": 0, "seconds": 0.0, "frontier": null,
            "error": null}))
        .expect("reads");
    assert_eq!(r.stop, None);
}

#[test]
fn the_reason_is_saved_with_its_message_and_reads_back_typed() {
    for reason in [
        StopReason::SessionExpired,
        StopReason::RefusedTwice,
        StopReason::RateLimited {
            retry_after_secs: Some(3600),
            until: Some("2026-01-01T01:00:00Z".into()),
        },
        StopReason::Cloudflare {
            status: 403,
            page: "Cloudflare challenge page".into(),
        },
        StopReason::Outage {
            failed_in_a_row: 5,
            last_error: "chatgpt.com failed with HTTP 502".into(),
        },
        StopReason::Cancelled,
    ] {
        let report = SyncReport::stopped(reason.clone());
        let saved = serde_json::to_value(&report).expect("json");
        assert_eq!(saved["error"], reason.to_string(), "{saved}");
        assert!(saved["stop"]["reason"].is_string(), "{saved}");
        let back: SyncReport = serde_json::from_value(saved).expect("reads");
        assert_eq!(back.stop, Some(reason));
    }
    let ok = serde_json::to_value(SyncReport::default()).expect("json");
    assert!(ok["error"].is_null() && ok["stop"].is_null(), "{ok}");
}

#[test]
fn reasons_keep_the_wording_of_the_errors_they_come_from() {
    for e in [
        ApiError::SessionExpired,
        ApiError::Unauthorized,
        ApiError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(1800)),
        },
        ApiError::Challenge {
            status: 403,
            kind: "HTML page",
        },
        ApiError::Server(502),
    ] {
        assert_eq!(StopReason::from(e.clone()).to_string(), e.to_string());
    }
    assert!(StopReason::from(ApiError::SessionExpired).session_died());
    assert!(StopReason::from(ApiError::Unauthorized).session_died());
    assert!(!StopReason::from(ApiError::Server(502)).session_died());
    assert_eq!(
        StopReason::from(SessionError::DeadSession),
        StopReason::SessionExpired
    );
    let limited = StopReason::from(ApiError::RateLimited {
        retry_after: Some(std::time::Duration::from_secs(60)),
    });
    assert!(
        matches!(
            &limited,
            StopReason::RateLimited {
                until: Some(_),
                retry_after_secs: Some(60)
            }
        ),
        "{limited:?}"
    );
}

#[test]
fn one_rendering_for_the_terminal_and_the_log() {
    let r = SyncReport {
        full: true,
        listed: 4,
        new: 1,
        failed: 1,
        failures: vec!["c9: chatgpt.com failed with HTTP 502".into()],
        deleted_remotely: 2,
        degraded: vec!["project names unavailable (404)".into()],
        requests: 7,
        seconds: 1.5,
        stop: Some(StopReason::SessionExpired),
        ..SyncReport::default()
    };
    let mut out = Vec::new();
    r.write_to(&mut out).expect("write");
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        "sync --full: 4 listed, 1 new, 0 updated, 0 unchanged, 1 failed; 0 attachments \
         downloaded; 7 requests in 1.5 s\n  2 conversations are no longer on chatgpt.com \
         (kept, marked deleted_remotely)\n  failed: c9: chatgpt.com failed with HTTP 502\n  \
         degraded: project names unavailable (404)\n  stopped: session expired: run `convos \
         auth` with a fresh cookie from chatgpt.com\n"
    );
    assert_eq!(
        r.failure_message().as_deref(),
        Some("session expired: run `convos auth` with a fresh cookie from chatgpt.com")
    );
    let partial = SyncReport {
        failed: 3,
        ..SyncReport::default()
    };
    assert_eq!(
        partial.failure_message().as_deref(),
        Some("3 conversations could not be fetched; they will be retried next run")
    );
    assert_eq!(SyncReport::default().failure_message(), None);
}

#[test]
fn the_pace_the_429s_and_the_time_left_are_in_the_report() {
    let r = SyncReport {
        listed: 2000,
        new: 300,
        requests: 330,
        seconds: 900.0,
        rate_limited: 3,
        pacing: Some("adaptive".into()),
        rate_per_minute: Some(0.94),
        remaining: 1700,
        eta_secs: Some(170.0 * 60.0 + 5.0),
        attachments_left: 12,
        ..SyncReport::default()
    };
    let mut out = Vec::new();
    r.write_to(&mut out).expect("write");
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        "sync: 2000 listed, 300 new, 0 updated, 0 unchanged, 0 failed; 0 attachments \
         downloaded; 330 requests in 900.0 s; pacing 0.94 requests/min (adaptive), 3 \
         answered 429; backfill: 1700 conversations left, about 2 h 50 min at this pace\n  \
         12 attachments left for later runs (this run's request budget was spent)\n"
    );
    let done = SyncReport {
        rate_per_minute: Some(120.0),
        pacing: Some("fixed".into()),
        ..SyncReport::default()
    };
    assert_eq!(
        done.pace_note().as_deref(),
        Some("pacing 120 requests/min (fixed), 0 answered 429")
    );
    // A report saved by an earlier version has no pacing facts.
    let old: SyncReport = serde_json::from_value(serde_json::json!({
        "started_at": "", "finished_at": "", "full": false, "listed": 1, "new": 0,
        "updated": 0, "unchanged": 1, "failed": 0, "failures": [], "deleted_remotely": 0,
        "flags_updated": 0, "attachments": 0, "attachments_failed": 0, "requests": 2,
        "seconds": 0.5, "frontier": null
    }))
    .expect("reads");
    assert_eq!(old.pace_note(), None);
    for (secs, words) in [
        (40.0, "40 s"),
        (720.0, "12 min"),
        (12_000.0, "3 h 20 min"),
        (187_200.0, "2 d 4 h"),
        (f64::INFINITY, "213503982334601 d 7 h"),
    ] {
        assert_eq!(super::human_duration(secs), words, "{secs}");
    }
}
