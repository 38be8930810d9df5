//! The lint rules, one file per concern. Each reads the [`Cx`] (the objects, the
//! Kafkas, the MinIO servers and their targets) and pushes findings.

mod bootstrap;
mod processor;
mod queue_dir;
mod resources;
mod topics;

use super::finding::{Finding, Severity, Site};
use super::kafka::{self, Kafka};
use super::minio::{self, Minio, Target};
use super::objects::{Container, Role, World};

pub(crate) struct Cx<'w, 'a> {
    pub w: &'w World<'a>,
    pub kafkas: Vec<Kafka>,
    pub minios: Vec<Minio<'a>>,
    pub targets: Vec<Target>,
    pub out: Vec<Finding>,
}

impl<'a> Cx<'_, 'a> {
    fn push(&mut self, rule: &'static str, site: Site, message: String, fix: String) {
        let severity = super::RULES.iter().find(|(id, _, _)| *id == rule).map_or(Severity::Error, |(_, s, _)| *s);
        self.out.push(Finding::new(rule, severity, site, message, fix));
    }

    fn processors(&self) -> impl Iterator<Item = &Container<'a>> {
        self.w.containers.iter().filter(|c| c.role == Role::Processor)
    }

    /// `Kafka/my-cluster` or `StatefulSet/kafka`.
    fn kafka_label(&self, k: &Kafka) -> String {
        self.w.objects[k.object].at.object.to_string()
    }
}

pub(crate) fn run(w: &World) -> Vec<Finding> {
    let kafkas = kafka::kafkas(w);
    let minios = minio::minios(w);
    let targets = minio::targets(&minios);
    let mut cx = Cx { w, kafkas, minios, targets, out: Vec::new() };
    topics::check(&mut cx);
    bootstrap::check(&mut cx);
    queue_dir::check(&mut cx);
    resources::check(&mut cx);
    processor::check(&mut cx);
    cx.out
}
