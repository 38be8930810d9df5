//! What each kind of environment can run, as data: one table that both the file's
//! validation (`environment.kind`) and `harness run/validate --env KIND` read, so the
//! two can never disagree. Each rule says when it is broken and what to say, in the
//! words of the file (change the file) and of the flag (run without `--env`).

use super::raw::EnvKind;

/// What the rules look at: the scenario's environment and processor, whichever way
/// its kind was chosen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts {
    pub kind: EnvKind,
    pub kafka_brokers: u32,
    pub kafka_operator: bool,
    pub misconfigure: bool,
    pub external_given: bool,
    pub processor_running: bool,
    pub processor_image: bool,
}

pub(crate) struct Rule {
    /// The key the error names.
    pub path: &'static str,
    pub broken: fn(&Facts) -> bool,
    /// The message when the file's `environment.kind` chose the kind.
    pub in_file: fn(EnvKind) -> String,
    /// The message when `--env KIND` chose it.
    pub with_flag: fn(EnvKind) -> String,
}

pub(crate) const RULES: &[Rule] = &[
    Rule {
        path: "environment.external",
        broken: |f| f.kind == EnvKind::External && !f.external_given,
        in_file: |_| {
            "`kind: external` needs the pipeline's endpoints: add `external: { s3_endpoint: http://host:9000, kafka_bootstrap: host:9092 }`, \
             or the Kubernetes namespace they are read from: `external: { namespace: NAME }`"
                .into()
        },
        with_flag: |_| {
            "--env external needs the pipeline's endpoints: add `environment.external` (s3_endpoint, kafka_bootstrap) to the file".into()
        },
    },
    Rule {
        path: "processor",
        broken: |f| f.processor_running != (f.kind == EnvKind::External),
        in_file: external_processor_rule,
        with_flag: external_processor_rule,
    },
    Rule {
        path: "processor.image",
        broken: |f| f.processor_image && f.kind == EnvKind::Local,
        in_file: |_| IMAGE_NEEDS_ENGINE.into(),
        with_flag: |_| IMAGE_NEEDS_ENGINE.into(),
    },
    Rule {
        path: "environment.misconfigure",
        broken: |f| f.misconfigure && f.kind != EnvKind::Local,
        in_file: |_| "is supported by the local environment only in this version; remove it or use `kind: local`".into(),
        with_flag: |k| format!("is supported by the local environment only in this version; run it without `--env {}`", k.name()),
    },
    Rule {
        path: "environment.kafka.brokers",
        broken: |f| f.kafka_brokers == 3 && f.kind != EnvKind::Local,
        in_file: |k| format!("the {} environment runs one broker in this version; three brokers need `kind: local`", k.name()),
        with_flag: |k| format!("the {n} environment runs one broker in this version; run it without `--env {n}`", n = k.name()),
    },
    Rule {
        path: "environment.kafka.operator",
        broken: |f| f.kafka_operator && f.kind != EnvKind::Kubernetes,
        in_file: |k| format!("an operator runs Kafka on Kubernetes: use `kind: kubernetes` (this is {})", k.name()),
        with_flag: |k| format!("an operator runs Kafka on Kubernetes: run it with `--env kubernetes` (not --env {})", k.name()),
    },
];

/// The first rule `facts` break, in the table's order.
pub(crate) fn first_broken(facts: &Facts) -> Option<&'static Rule> {
    RULES.iter().find(|r| (r.broken)(facts))
}

/// Why `processor.image` is refused on the local environment.
pub(crate) const IMAGE_NEEDS_ENGINE: &str =
    "runs in a container: use `environment.kind: containers` or `kubernetes` (the local environment runs a `command` on this machine)";

/// What the processor section must say for `kind`: `running: true` exactly on external.
pub(crate) fn external_processor_rule(kind: EnvKind) -> String {
    if kind == EnvKind::External {
        "the external environment tests the pipeline's own processor: write `processor: { running: true, group_id: <its consumer group> }` \
         (running a processor of the harness against an external pipeline is not supported yet)"
            .into()
    } else {
        format!("`running: true` means the pipeline's own processor runs already, which only the external environment has; the {} environment needs `builtin: resize` or `command: [...]`", kind.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: EnvKind) -> Facts {
        Facts {
            kind,
            kafka_brokers: 1,
            kafka_operator: false,
            misconfigure: false,
            external_given: kind == EnvKind::External,
            processor_running: kind == EnvKind::External,
            processor_image: false,
        }
    }

    #[test]
    fn a_plain_scenario_breaks_no_rule_anywhere() {
        for kind in [EnvKind::Local, EnvKind::Containers, EnvKind::Kubernetes, EnvKind::External] {
            assert!(first_broken(&facts(kind)).is_none(), "{kind:?}");
        }
    }

    #[test]
    fn an_operator_is_refused_everywhere_but_kubernetes() {
        for kind in [EnvKind::Local, EnvKind::Containers, EnvKind::External] {
            let rule = first_broken(&Facts { kafka_operator: true, ..facts(kind) }).map(|r| r.path);
            assert_eq!(rule, Some("environment.kafka.operator"), "{kind:?}");
        }
        assert!(first_broken(&Facts { kafka_operator: true, ..facts(EnvKind::Kubernetes) }).is_none());
    }

    #[test]
    fn three_brokers_and_misconfigurations_need_local() {
        for kind in [EnvKind::Containers, EnvKind::Kubernetes] {
            assert_eq!(first_broken(&Facts { kafka_brokers: 3, ..facts(kind) }).map(|r| r.path), Some("environment.kafka.brokers"));
            assert_eq!(first_broken(&Facts { misconfigure: true, ..facts(kind) }).map(|r| r.path), Some("environment.misconfigure"));
        }
        assert!(first_broken(&Facts { kafka_brokers: 3, misconfigure: true, ..facts(EnvKind::Local) }).is_none());
    }
}
