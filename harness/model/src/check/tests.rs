//! One synthetic history per anomaly class; each must be classified, and only it.

use super::*;
use crate::history::{EventSeen, OutputVersion, ProcessorExit, Upload, UploadFailure};
use crate::metrics;
use crate::scenario::Expectation;
use crate::verdict::{judge, overall, Verdict};

const W: u32 = 128;

fn spec() -> CheckSpec {
    CheckSpec { thumbnail_width: W }
}

fn upload(key: &str, at: u64) -> Upload {
    Upload {
        key: key.into(),
        etag: format!("etag-{key}"),
        bytes: 1000,
        width: 640,
        height: 480,
        format: "jpeg".into(),
        scheduled_at: at,
        acked_at: at + 5_000,
    }
}

fn event(key: &str, at: u64, offset: i64) -> EventSeen {
    EventSeen {
        key: key.into(),
        bucket: "images".into(),
        event_name: "s3:ObjectCreated:Put".into(),
        etag: format!("etag-{key}"),
        partition: 0,
        offset,
        at,
    }
}

fn output(key: &str, version: &str, at: u64, width: u32) -> OutputVersion {
    OutputVersion {
        key: key.into(),
        version_id: version.into(),
        bytes: 300,
        seen_at: Some(at),
        inspection: Inspection::Image { width, height: width * 3 / 4, format: "jpeg".into() },
    }
}

/// Three uploads, each with one event and one valid output.
fn clean() -> History {
    let keys = ["a/b c.jpg", "Müller 日本.png", "x+y.jpg"];
    let mut h = History { drained: true, ..Default::default() };
    for (i, k) in keys.iter().enumerate() {
        let t = i as u64 * 100_000;
        h.uploads.push(upload(k, t));
        h.events.push(event(k, t + 20_000, i as i64));
        h.outputs.push(output(k, &format!("v{i}"), t + 60_000, W));
    }
    h
}

fn verdict_of(h: &History) -> (Verdict, String) {
    let ledger = check(h, &spec());
    let m = metrics::compute(&ledger);
    let r = judge(&[Expectation::ExactlyOnce], h, &ledger, &m);
    (r[0].verdict, r[0].detail.clone())
}

#[test]
fn clean_history_passes() {
    let h = clean();
    let l = check(&h, &spec());
    assert!(l.findings.output_clean());
    assert!(l.findings.lost_events.is_empty() && l.findings.duplicate_events.is_empty());
    assert_eq!(l.entries.len(), 3);
    assert_eq!(verdict_of(&h).0, Verdict::Pass);
}

#[test]
fn empty_history_is_not_pass() {
    let h = History::default();
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Unknown);
    assert!(detail.contains("nothing to judge"), "{detail}");
    assert_eq!(overall(&[]), Verdict::Unknown);
}

#[test]
fn lost_output_is_named() {
    let mut h = clean();
    h.outputs.retain(|o| o.key != "a/b c.jpg");
    let l = check(&h, &spec());
    assert_eq!(l.findings.lost_outputs, ["a/b c.jpg"]);
    assert!(l.findings.lost_events.is_empty());
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(detail.starts_with("1 of 3 images have no thumbnail: a/b c.jpg"), "{detail}");
    assert!(!detail.contains("notification stage"), "{detail}");
}

#[test]
fn lost_event_is_attributed_to_the_notification_stage() {
    let mut h = clean();
    h.events.retain(|e| e.key != "x+y.jpg");
    h.outputs.retain(|o| o.key != "x+y.jpg");
    let l = check(&h, &spec());
    assert_eq!(l.findings.lost_events, ["x+y.jpg"]);
    assert_eq!(l.findings.lost_outputs, ["x+y.jpg"]);
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(detail.contains("lost at the notification stage"), "{detail}");
}

/// With bounds on lost notifications, a loss at the notification stage is judged
/// there (and named), not failed a second time by exactly-once; a thumbnail lost
/// after its event reached the topic still fails exactly-once.
#[test]
fn notification_losses_with_bounds_are_judged_by_notifications_lost() {
    let mut h = clean();
    h.events.retain(|e| e.key != "x+y.jpg");
    h.outputs.retain(|o| o.key != "x+y.jpg");
    let ledger = check(&h, &spec());
    let m = metrics::compute(&ledger);
    let both = [Expectation::ExactlyOnce, Expectation::NotificationsLost { at_least: None, at_most: Some(5) }];
    let r = judge(&both, &h, &ledger, &m);
    assert_eq!(r[0].verdict, Verdict::Pass, "{}", r[0].detail);
    assert!(r[0].detail.starts_with("all 2 images whose event reached the topic have exactly one valid thumbnail"), "{}", r[0].detail);
    assert!(r[0].detail.contains("judged by notifications_lost, not here: x+y.jpg"), "{}", r[0].detail);
    assert_eq!(r[1].verdict, Verdict::Pass, "{}", r[1].detail);
    assert!(r[1].detail.contains("x+y.jpg"), "{}", r[1].detail);

    h.outputs.retain(|o| o.key != "a/b c.jpg");
    let ledger = check(&h, &spec());
    let r = judge(&both, &h, &ledger, &metrics::compute(&ledger));
    assert_eq!(r[0].verdict, Verdict::Fail, "{}", r[0].detail);
    assert!(r[0].detail.starts_with("1 of 3 images have no thumbnail: a/b c.jpg"), "{}", r[0].detail);
}

#[test]
fn duplicate_output_is_counted() {
    let mut h = clean();
    h.outputs.push(output("Müller 日本.png", "v9", 900_000, W));
    let l = check(&h, &spec());
    assert_eq!(l.findings.duplicate_outputs, [("Müller 日本.png".to_string(), 2)]);
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(detail.contains("Müller 日本.png (×2)"), "{detail}");
}

#[test]
fn duplicate_event_alone_is_a_note_not_a_failure() {
    let mut h = clean();
    h.events.push(event("a/b c.jpg", 500_000, 10));
    let l = check(&h, &spec());
    assert_eq!(l.findings.duplicate_events, [("a/b c.jpg".to_string(), 2)]);
    assert!(l.findings.output_clean());
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Pass);
    assert!(detail.contains("duplicate events"), "{detail}");
}

#[test]
fn phantom_output_is_named() {
    let mut h = clean();
    h.outputs.push(output("never/uploaded.jpg", "v7", 1, W));
    let l = check(&h, &spec());
    assert_eq!(l.findings.phantom_outputs, ["never/uploaded.jpg"]);
    assert_eq!(verdict_of(&h).0, Verdict::Fail);
}

#[test]
fn invalid_outputs_wrong_width_and_not_an_image() {
    let mut h = clean();
    h.outputs[0].inspection = Inspection::Image { width: 640, height: 480, format: "jpeg".into() };
    h.outputs[1].inspection = Inspection::NotAnImage { reason: "bad magic".into() };
    let l = check(&h, &spec());
    assert_eq!(l.findings.invalid_outputs.len(), 2);
    assert!(l.findings.invalid_outputs[0].1.contains("expected 128 pixels wide"));
    assert!(l.findings.invalid_outputs[1].1.contains("not an image"));
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(detail.contains("2 thumbnails are invalid"), "{detail}");
}

#[test]
fn harness_canary_is_never_in_the_ledger() {
    let mut h = clean();
    h.events.push(event("_harness/canary/x.png", 1, 99));
    h.outputs.push(output("_harness/canary/x.png", "vc", 2, W));
    let l = check(&h, &spec());
    assert!(l.findings.phantom_outputs.is_empty() && l.findings.stray_events.is_empty());
    assert_eq!(verdict_of(&h).0, Verdict::Pass);
}

#[test]
fn stray_events_are_reported() {
    let mut h = clean();
    h.events.push(event("someone/else.jpg", 1, 50));
    assert_eq!(check(&h, &spec()).findings.stray_events, ["someone/else.jpg"]);
}

#[test]
fn failed_uploads_make_a_clean_run_unknown() {
    let mut h = clean();
    h.upload_failures.push(UploadFailure { key: "z.jpg".into(), error: "timeout".into(), at: 1 });
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Unknown);
    assert!(detail.contains("z.jpg"), "{detail}");
}

#[test]
fn processor_exits_do_not_change_the_ledger() {
    let mut h = clean();
    h.processor_exits.push(ProcessorExit { at: 1, status: "signal 9".into(), restarted: true });
    assert!(check(&h, &spec()).findings.output_clean());
}

#[test]
fn long_key_lists_are_truncated() {
    let mut h = History { drained: false, ..Default::default() };
    for i in 0..25 {
        h.uploads.push(upload(&format!("k{i:02}"), i));
    }
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(detail.contains("25 of 25 images have no thumbnail"), "{detail}");
    assert!(detail.contains("and 15 more"), "{detail}");
    assert!(detail.contains("drain timeout"), "{detail}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_history() -> impl Strategy<Value = History> {
        let key = prop::sample::select(vec!["a", "b", "c d", "_harness/canary/x", "ü"]);
        let uploads = prop::collection::vec((key.clone(), 0u64..1_000_000), 0..8);
        let events = prop::collection::vec((key.clone(), 0u64..1_000_000), 0..12);
        let outputs = prop::collection::vec((key, 0u64..1_000_000, 0u32..300, any::<bool>()), 0..12);
        (uploads, events, outputs, any::<bool>()).prop_map(|(u, e, o, drained)| History {
            uploads: u.into_iter().map(|(k, t)| upload(k, t)).collect(),
            events: e.into_iter().enumerate().map(|(i, (k, t))| event(k, t, i as i64)).collect(),
            outputs: o
                .into_iter()
                .enumerate()
                .map(|(i, (k, t, w, img))| {
                    let mut out = output(k, &format!("v{i}"), t, w);
                    if !img {
                        out.inspection = Inspection::NotAnImage { reason: "x".into() };
                    }
                    out
                })
                .collect(),
            drained,
            ..Default::default()
        })
    }

    proptest! {
        /// Total and consistent: every upload key is one row; counts add up; a Pass
        /// always means uploads existed and every row has exactly one valid output.
        #[test]
        fn checker_is_total_and_consistent(h in arb_history()) {
            let l = check(&h, &spec());
            let m = metrics::compute(&l);
            let r = judge(&[Expectation::ExactlyOnce], &h, &l, &m);
            let mut keys: Vec<&str> =
                h.uploads.iter().map(|u| u.key.as_str()).filter(|k| !k.starts_with(crate::HARNESS_KEY_PREFIX)).collect();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(l.entries.len(), keys.len());
            let outs: u32 = l.entries.iter().map(|e| e.outputs).sum();
            let counted = h.outputs.iter().filter(|o| keys.contains(&o.key.as_str())).count() as u32;
            prop_assert_eq!(outs, counted);
            if r[0].verdict == Verdict::Pass {
                prop_assert!(!l.entries.is_empty());
                prop_assert!(l.entries.iter().all(|e| e.outputs == 1 && e.valid_outputs == 1));
                prop_assert!(l.findings.phantom_outputs.is_empty());
            }
        }
    }
}

mod faults {
    use super::*;
    use crate::history::FaultWindow;

    fn window(effect: Option<u64>, recovered: Option<u64>) -> FaultWindow {
        FaultWindow {
            index: 0,
            kind: "broker_kill".into(),
            target: "kafka".into(),
            injected_at: 1_000,
            effect_seen_at: effect,
            proof: "produce failed".into(),
            healed_at: Some(5_000_000),
            recovered_at: recovered,
        }
    }

    fn judged(h: &History, e: Expectation) -> (Verdict, String) {
        let ledger = check(h, &spec());
        let m = metrics::compute(&ledger);
        let r = judge(&[e], h, &ledger, &m);
        (r[0].verdict, r[0].detail.clone())
    }

    #[test]
    fn a_fault_that_did_not_take_effect_makes_the_run_unknown_never_pass() {
        let mut h = clean();
        h.faults.push(window(None, Some(6_000_000)));
        let (v, detail) = judged(&h, Expectation::FaultsTookEffect { planned: 1 });
        assert_eq!(v, Verdict::Unknown, "{detail}");
        assert!(detail.contains("never shown to take effect") && detail.contains("produce failed"), "{detail}");
        let ledger = check(&h, &spec());
        let m = metrics::compute(&ledger);
        let all = judge(&[Expectation::ExactlyOnce, Expectation::FaultsTookEffect { planned: 1 }], &h, &ledger, &m);
        assert_eq!(overall(&all), Verdict::Unknown);
    }

    #[test]
    fn faults_must_be_injected_and_recover() {
        let mut h = clean();
        let (v, detail) = judged(&h, Expectation::FaultsTookEffect { planned: 1 });
        assert_eq!(v, Verdict::Unknown, "not injected: {detail}");
        h.faults.push(window(Some(2_000_000), None));
        let (v, detail) = judged(&h, Expectation::FaultsTookEffect { planned: 1 });
        assert_eq!(v, Verdict::Unknown, "{detail}");
        assert!(detail.contains("not shown to recover"), "{detail}");
        h.faults[0].recovered_at = Some(6_000_000);
        let (v, detail) = judged(&h, Expectation::FaultsTookEffect { planned: 1 });
        assert_eq!(v, Verdict::Pass, "{detail}");
        assert!(detail.contains("recovered 1000ms after heal"), "{detail}");
    }

    #[test]
    fn lost_notifications_are_counted_against_the_bounds_and_named() {
        let mut h = clean();
        h.events.retain(|e| e.key != "x+y.jpg");
        let (v, detail) = judged(&h, Expectation::NotificationsLost { at_least: Some(1), at_most: None });
        assert_eq!(v, Verdict::Pass, "{detail}");
        assert!(detail.starts_with("1 of 3 uploads lost at the notification stage") && detail.contains("x+y.jpg"), "{detail}");
        let (v, detail) = judged(&h, Expectation::NotificationsLost { at_least: Some(2), at_most: None });
        assert_eq!(v, Verdict::Fail, "{detail}");
        assert!(detail.contains("expected at least 2"), "{detail}");
        let (v, _) = judged(&clean(), Expectation::NotificationsLost { at_least: Some(1), at_most: None });
        assert_eq!(v, Verdict::Fail, "no damage detected is a failure when damage is expected");
        let (v, _) = judged(&History::default(), Expectation::NotificationsLost { at_least: Some(1), at_most: None });
        assert_eq!(v, Verdict::Unknown);
    }

    #[test]
    fn uploads_refused_while_minio_was_down_are_expected() {
        let mut h = clean();
        h.faults.push(FaultWindow { kind: "minio_restart".into(), target: "minio".into(), ..window(Some(2_000_000), Some(6_000_000)) });
        h.upload_failures.push(UploadFailure { key: "late.jpg".into(), error: "connection refused".into(), at: 3_000_000 });
        let (v, detail) = verdict_of(&h);
        assert_eq!(v, Verdict::Pass, "{detail}");
        assert!(detail.contains("refused while MinIO was down"), "{detail}");
        // Outside the window, a failure still makes exactly-once unjudgeable.
        h.upload_failures[0].at = 60_000_000;
        assert_eq!(verdict_of(&h).0, Verdict::Unknown);
    }
}
