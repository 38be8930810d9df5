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
        hostile: None,
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
    assert!(detail.starts_with("1 of 3 images have no thumbnail: ") && detail.ends_with("): a/b c.jpg"), "{detail}");
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
    assert!(r[0].detail.starts_with("1 of 3 images have no thumbnail: 1 not told lost from unprocessed (the processor's committed offsets were not read): a/b c.jpg;"), "{}", r[0].detail);
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

/// A processor that makes thumbnails of another width on purpose (a student's
/// 200-pixel one): the verdict says which scenario field says so.
#[test]
fn thumbnails_all_of_one_other_width_name_the_field_that_sets_it() {
    let mut h = clean();
    for o in &mut h.outputs {
        o.inspection = Inspection::Image { width: 200, height: 150, format: "png".into() };
    }
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(detail.contains("every thumbnail is 200 pixels wide") && detail.contains("pipeline: { thumbnail_width: 200 }"), "{detail}");
    // Mixed widths or a broken output: no such hint.
    h.outputs[0].inspection = Inspection::Image { width: 128, height: 96, format: "png".into() };
    assert!(!verdict_of(&h).1.contains("every thumbnail is"));
    h.outputs[0].inspection = Inspection::NotAnImage { reason: "bad magic".into() };
    assert!(!verdict_of(&h).1.contains("every thumbnail is"));
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
            wiped_events: Vec::new(),
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

/// Three uploads without a thumbnail: one whose event the group committed (dropped
/// by the processor), one whose event it had not reached, one with no event at all.
fn three_missing(group: Option<GroupOffsets>) -> History {
    let mut h = clean();
    h.drained = false;
    h.drain_end = crate::history::DrainEnd::Timeout;
    h.outputs.clear();
    h.events.retain(|e| e.key != "x+y.jpg");
    // Events at offsets 0 ("a/b c.jpg") and 1 ("Müller 日本.png").
    h.group = group;
    h
}

fn committed_up_to(next: i64) -> GroupOffsets {
    GroupOffsets { group: "thumbs".into(), topic: "images".into(), committed: [(0, next)].into(), error: None }
}

#[test]
fn missing_thumbnails_are_told_lost_from_unprocessed_by_the_committed_offsets() {
    let h = three_missing(Some(committed_up_to(1)));
    let l = check(&h, &spec());
    assert_eq!(l.findings.lost_outputs.len(), 3);
    assert_eq!(l.findings.lost_by_processor, vec!["a/b c.jpg".to_string()]);
    assert_eq!(l.findings.unprocessed, vec!["Müller 日本.png".to_string()]);
    assert_eq!(l.findings.lost_events, vec!["x+y.jpg".to_string()]);
    let class = |k: &str| l.entries.iter().find(|e| e.key == k).and_then(|e| e.missing);
    assert_eq!(class("a/b c.jpg"), Some(Missing::Lost));
    assert_eq!(class("Müller 日本.png"), Some(Missing::Unprocessed));
    assert_eq!(class("x+y.jpg"), Some(Missing::NoEvent));
    let (v, detail) = verdict_of(&h);
    assert_eq!(v, Verdict::Fail);
    assert!(
        detail.contains("1 lost (group thumbs committed their events, yet no thumbnail exists: the processor dropped them): a/b c.jpg;"),
        "{detail}"
    );
    assert!(detail.contains("1 unprocessed (group thumbs had not committed their events when the drain ended: a backlog, or a stuck or slow processor): Müller 日本.png"), "{detail}");
    assert!(detail.contains("1 never had an event on the topic (lost at the notification stage): x+y.jpg"), "{detail}");
}

#[test]
fn a_group_that_committed_nothing_leaves_every_event_unprocessed() {
    let mut g = committed_up_to(0);
    g.committed.clear();
    let h = three_missing(Some(g));
    let l = check(&h, &spec());
    assert!(l.findings.lost_by_processor.is_empty());
    assert_eq!(l.findings.unprocessed.len(), 2);
    let (_, detail) = verdict_of(&h);
    assert!(detail.contains("group thumbs has committed nothing on topic images"), "{detail}");
}

#[test]
fn unreadable_offsets_classify_nothing_and_say_why() {
    let mut g = committed_up_to(5);
    g.error = Some("coordinator not available".into());
    let h = three_missing(Some(g));
    let l = check(&h, &spec());
    assert!(l.findings.lost_by_processor.is_empty() && l.findings.unprocessed.is_empty());
    assert_eq!(l.entries[0].missing, Some(Missing::Unclassified));
    let (_, detail) = verdict_of(&h);
    assert!(
        detail
            .contains("2 not told lost from unprocessed (group thumbs's committed offsets could not be read: coordinator not available): "),
        "{detail}"
    );
    // A history from before offsets were read (an old history.json) says so too.
    let (_, detail) = verdict_of(&three_missing(None));
    assert!(detail.contains("the processor's committed offsets were not read"), "{detail}");
}

#[test]
fn one_committed_copy_of_a_duplicated_event_is_enough_to_call_it_lost() {
    // Its first copy (partition 0, offset 1) is not committed; a redelivered copy
    // on partition 1 is.
    let mut g = committed_up_to(1);
    g.committed.insert(1, 5);
    let mut h = three_missing(Some(g));
    let mut late = event("Müller 日本.png", 900_000, 3);
    late.partition = 1;
    h.events.push(late);
    let l = check(&h, &spec());
    assert_eq!(l.findings.lost_by_processor, vec!["Müller 日本.png".to_string(), "a/b c.jpg".to_string()]);
    assert!(l.findings.unprocessed.is_empty());
}

#[test]
fn a_settled_drain_is_named_in_the_verdict() {
    let mut h = three_missing(Some(committed_up_to(2)));
    h.drain_end = crate::history::DrainEnd::Settled;
    let (_, detail) = verdict_of(&h);
    assert!(detail.contains("the drain ended early"), "{detail}");
    assert!(!detail.contains("drain timeout ran out"), "{detail}");
}

fn hostile(key: &str, kind: crate::scenario::HostileKind, at: u64) -> Upload {
    Upload { hostile: Some(kind), ..upload(key, at) }
}

fn judge_skipped(h: &History) -> (Verdict, String) {
    let ledger = check(h, &spec());
    let m = metrics::compute(&ledger);
    let r = judge(&[Expectation::SkippedInputs { planned: 3 }, Expectation::ExactlyOnce], h, &ledger, &m);
    assert_eq!(r[1].verdict, Verdict::Pass, "hostile inputs that are not images stay out of exactly_once: {}", r[1].detail);
    (r[0].verdict, r[0].detail.clone())
}

#[test]
fn hostile_inputs_are_judged_apart_and_each_is_named() {
    use crate::scenario::HostileKind::*;
    let mut h = clean();
    h.uploads.push(hostile("hostile/not-an-image.jpg", NotAnImage, 400_000));
    h.uploads.push(hostile("hostile/truncated.jpg", TruncatedJpeg, 410_000));
    h.uploads.push(hostile("hostile/huge.jpg", Huge, 420_000));
    h.events.push(event("hostile/not-an-image.jpg", 401_000, 3));
    h.outputs.push(output("hostile/truncated.jpg", "t1", 430_000, W));
    h.outputs.push(output("hostile/huge.jpg", "h1", 440_000, W));
    let (v, detail) = judge_skipped(&h);
    assert_eq!(v, Verdict::Pass, "{detail}");
    assert!(detail.contains("not_an_image hostile/not-an-image.jpg skipped"), "{detail}");
    assert!(detail.contains("truncated_jpeg hostile/truncated.jpg one valid thumbnail"), "{detail}");
    assert!(detail.contains("huge hostile/huge.jpg one valid thumbnail"), "{detail}");
    let l = check(&h, &spec());
    assert!(l.findings.stray_events.is_empty() && l.findings.phantom_outputs.is_empty());

    // A thumbnail of text is wrong; so is an exit the scenario did not cause.
    let mut bad = h.clone();
    let mut junk = output("hostile/not-an-image.jpg", "n1", 450_000, W);
    junk.inspection = Inspection::NotAnImage { reason: "no magic".into() };
    bad.outputs.push(junk);
    bad.processor_exits.push(ProcessorExit { at: 402_000, status: "exit code 1".into(), restarted: true });
    let (v, detail) = judge_skipped(&bad);
    assert_eq!(v, Verdict::Fail, "{detail}");
    assert!(detail.contains("1 thumbnail version(s), though it is not an image"), "{detail}");
    assert!(detail.contains("the processor exited 1 time(s) on its own (exit code 1)"), "{detail}");

    // One hostile input never reached MinIO: not judged, not passed.
    let mut short = h.clone();
    short.uploads.retain(|u| u.hostile != Some(Huge));
    short.outputs.retain(|o| o.key != "hostile/huge.jpg");
    assert_eq!(judge_skipped(&short).0, Verdict::Unknown);
}
