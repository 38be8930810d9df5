//! Readiness as a condition with a timeout: a probe through a real client path,
//! repeated until it passes, raced against the process exiting.

use std::time::Duration;

use super::process::{describe_status, ChildProcess};
use super::ServiceError;

/// Runs `probe` every `poll` until it passes, the child exits or `timeout`
/// passes. Readiness as a condition through a real client path: the probe's
/// last error becomes the `NotReady` detail, an exit is reported at once, and
/// both carry the log's tail (classified as `PortInUse` when the log says so).
pub async fn ready_or_exit<F, Fut>(
    process: &mut ChildProcess,
    service: &str,
    timeout: Duration,
    poll: Duration,
    mut probe: F,
) -> Result<(), ServiceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut last_err = String::from("no probe finished");
    let probing = async {
        loop {
            match probe().await {
                Ok(()) => return,
                Err(e) => last_err = e,
            }
            tokio::time::sleep(poll).await;
        }
    };
    let exited = tokio::select! {
        status = process.wait() => Some(match status {
            Ok(status) => describe_status(status),
            Err(e) => format!("wait failed: {e}"),
        }),
        passed = tokio::time::timeout(timeout, probing) => match passed {
            Ok(()) => return Ok(()),
            Err(_) => None,
        },
    };
    let log = process.log_path().to_path_buf();
    let tail = process.log_tail(20);
    if super::ports::says_port_in_use(&tail) {
        return Err(ServiceError::PortInUse { service: service.to_string(), log, tail });
    }
    Err(match exited {
        Some(status) => ServiceError::Exited { service: service.to_string(), status, log, tail },
        None => ServiceError::NotReady { service: service.to_string(), timeout, detail: last_err, log, tail },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::process::{ChildSpec, ProcessGroup};

    #[tokio::test]
    async fn readiness_reports_exits_port_races_and_timeouts_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let group = ProcessGroup::new(dir.path());
        let sh = |name: &str, script: &str| ChildSpec {
            name: name.into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            ..ChildSpec::default()
        };
        let never = || async { Err::<(), String>("not yet".into()) };
        let poll = Duration::from_millis(20);

        let mut p = group.spawn(&sh("crash", "echo boom; exit 7")).unwrap();
        let err = ready_or_exit(&mut p, "svc", Duration::from_secs(10), poll, never).await.unwrap_err();
        assert!(matches!(&err, ServiceError::Exited { status, tail, .. } if status == "exit code 7" && tail.ends_with("boom")), "{err}");

        let mut p = group.spawn(&sh("race", "echo 'bind: Address already in use'; exit 1")).unwrap();
        let err = ready_or_exit(&mut p, "svc", Duration::from_secs(10), poll, never).await.unwrap_err();
        assert!(err.is_port_in_use(), "{err}");

        let mut p = group.spawn(&sh("slow", "echo waiting; exec sleep 60")).unwrap();
        let err = ready_or_exit(&mut p, "svc", Duration::from_millis(300), poll, never).await.unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("svc was not ready within 0.3s: not yet;") && text.ends_with("waiting"), "{text}");
        p.kill().await.unwrap();

        let mut p = group.spawn(&sh("fine", "exec sleep 60")).unwrap();
        let mut calls = 0;
        ready_or_exit(&mut p, "svc", Duration::from_secs(10), poll, || {
            calls += 1;
            let ok = calls >= 3;
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("warming up".to_string())
                }
            }
        })
        .await
        .unwrap();
        p.kill().await.unwrap();
    }
}
