//! Bootstrap addresses of MinIO's Kafka targets and of processors: does each land on
//! a client listener of a Kafka defined here, and do the two sides agree on SASL and
//! TLS?

use super::Cx;
use crate::lint::finding::Site;
use crate::lint::kafka::{addresses, resolve, Auth, Flavor, Kafka, Landing, Listener};
use crate::lint::objects::EnvVar;

/// How a client connects, as its variables say.
struct Security {
    sasl: bool,
    tls: bool,
    /// Kafka's name of the mechanism (`SCRAM-SHA-512`).
    mechanism: Option<String>,
    cert: bool,
    sasl_site: Option<Site>,
    tls_site: Option<Site>,
}

enum Kind {
    /// `Cx::targets` index.
    Minio(usize),
    /// `World::containers` index.
    Processor(usize),
}

struct Client<'c, 'a> {
    kind: Kind,
    brokers: &'c EnvVar<'a>,
    namespace: Option<&'a str>,
    security: Security,
}

type Found = (&'static str, Site, String, String);

pub(super) fn check(cx: &mut Cx) {
    if cx.kafkas.is_empty() {
        return;
    }
    let mut found: Vec<Found> = Vec::new();
    for client in clients(cx) {
        let Some(list) = client.brokers.value.as_deref() else { continue };
        let mut seen: Vec<(usize, String)> = Vec::new();
        for (host, port) in addresses(list) {
            let Some(port) = port else { continue };
            match resolve(cx.w, &cx.kafkas, host, port, client.namespace) {
                Landing::Listener(k, l) => {
                    if !seen.iter().any(|(o, n)| *o == k.object && *n == l.name) {
                        seen.push((k.object, l.name.clone()));
                        security(cx, &client, k, l, host, port, &mut found);
                    }
                }
                Landing::NotListener { kafka, via } => {
                    let fix = fix_address(cx, &client, kafka, host);
                    found.push((
                        "bootstrap-port",
                        client.brokers.at.site(),
                        format!(
                            "{host}:{port} is not a Kafka listener: {via}; {} listens on {}. {}",
                            cx.kafka_label(kafka),
                            kafka.describe_listeners(),
                            unreachable(cx, &client)
                        ),
                        fix,
                    ));
                }
                Landing::NotKafka { via } => {
                    let kafka = &cx.kafkas[0];
                    let fix = fix_address(cx, &client, kafka, host);
                    found.push((
                        "bootstrap-port",
                        client.brokers.at.site(),
                        format!("{host}:{port} does not reach Kafka: {via}. {}", unreachable(cx, &client)),
                        fix,
                    ));
                }
                Landing::NoHost => {
                    let kafka = &cx.kafkas[0];
                    let fix = fix_address(cx, &client, kafka, host);
                    let here: Vec<String> = cx.kafkas.iter().map(|k| cx.kafka_label(k)).collect();
                    found.push((
                        "bootstrap-host",
                        client.brokers.at.site(),
                        format!(
                            "{host} names no Service or Kafka in these manifests (Kafka here: {}): unless it is defined elsewhere, the name does not resolve and {} never connects",
                            here.join(", "),
                            who(cx, &client)
                        ),
                        fix,
                    ));
                }
                Landing::Unknown => {}
            }
        }
    }
    for (rule, site, message, fix) in found {
        cx.push(rule, site, message, fix);
    }
}

fn clients<'c, 'a>(cx: &'c Cx<'_, 'a>) -> Vec<Client<'c, 'a>> {
    let mut out = Vec::new();
    for (i, t) in cx.targets.iter().enumerate() {
        let m = &cx.minios[t.minio];
        let Some(brokers) = t.var(m, "BROKERS") else { continue };
        let sasl = t.is_on(m, "SASL");
        let mechanism = sasl.then(|| match t.value(m, "SASL_MECHANISM").map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("sha512" | "scram-sha-512") => "SCRAM-SHA-512".to_string(),
            Some("sha256" | "scram-sha-256") => "SCRAM-SHA-256".to_string(),
            Some("plain") | None => "PLAIN".to_string(),
            Some(other) => other.to_uppercase(),
        });
        let security = Security {
            sasl,
            tls: t.is_on(m, "TLS"),
            mechanism,
            cert: t.var(m, "CLIENT_TLS_CERT").is_some(),
            sasl_site: t.var(m, "SASL").map(|v| v.at.site()),
            tls_site: t.var(m, "TLS").map(|v| v.at.site()),
        };
        out.push(Client { kind: Kind::Minio(i), brokers, namespace: m.namespace, security });
    }
    for (i, c) in cx.w.containers.iter().enumerate() {
        if c.role != crate::lint::objects::Role::Processor {
            continue;
        }
        let Some(brokers) = c.var("KAFKA_BOOTSTRAP_SERVERS") else { continue };
        let protocol = c.var("KAFKA_SECURITY_PROTOCOL").and_then(|v| v.value.as_deref()).map(str::to_ascii_uppercase);
        let any = |p: &str| c.env.iter().any(|v| v.name.starts_with(p));
        let (sasl, tls) = match &protocol {
            Some(p) => (p.starts_with("SASL_"), p.ends_with("SSL")),
            None => (any("KAFKA_SASL_"), any("KAFKA_SSL_")),
        };
        let mechanism =
            ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_MECHANISMS"].iter().find_map(|n| c.var(n)?.value.as_deref()).map(str::to_ascii_uppercase);
        let site = c.var("KAFKA_SECURITY_PROTOCOL").map(|v| v.at.site());
        let security = Security {
            sasl,
            tls,
            mechanism: mechanism.or_else(|| sasl.then(|| "PLAIN".into())),
            cert: c.env.iter().any(|v| v.name.starts_with("KAFKA_SSL_") && v.name.contains("CERT")),
            sasl_site: site.clone(),
            tls_site: site,
        };
        out.push(Client { kind: Kind::Processor(i), brokers, namespace: cx.w.object_of(c).namespace, security });
    }
    out
}

fn who(cx: &Cx, client: &Client) -> String {
    match client.kind {
        Kind::Minio(t) => cx.targets[t].describe(),
        Kind::Processor(c) => format!("the processor (container {})", cx.w.containers[c].name()),
    }
}

/// What the client sees when the address is not a Kafka listener.
fn unreachable(cx: &Cx, client: &Client) -> String {
    match client.kind {
        Kind::Minio(_) => format!(
            "{} never gets a Kafka answer (`kafka: client has run out of available brokers to talk to … i/o timeout`): the target stays offline, no event reaches Kafka, and `mc admin config set … notify_kafka` refuses the address",
            who(cx, client)
        ),
        Kind::Processor(_) => "The processor never gets a Kafka answer and consumes nothing (librdkafka: `Receive failed` / `timed out`)".into(),
    }
}

/// A variable of the client for fix hints: `MINIO_NOTIFY_KAFKA_SASL_PRIMARY` / `KAFKA_…`.
fn var(cx: &Cx, client: &Client, field: &str) -> String {
    match client.kind {
        Kind::Minio(t) => cx.targets[t].var_name(field),
        Kind::Processor(_) => match field {
            "BROKERS" => "KAFKA_BOOTSTRAP_SERVERS".into(),
            "SASL" | "TLS" => "KAFKA_SECURITY_PROTOCOL".into(),
            f => format!("KAFKA_{f}"),
        },
    }
}

/// The address of a client listener of `kafka` that speaks what the client speaks
/// (else any client listener), as the client should write it.
fn listener_address(cx: &Cx, kafka: &Kafka, host: &str, want: Option<(bool, bool)>) -> Option<String> {
    let matches =
        |l: &&Listener| want.is_none_or(|(sasl, tls)| matches!(l.auth, Auth::Sasl(_)) == sasl && l.tls == tls && l.auth != Auth::Mtls);
    let l = kafka.client_listeners().find(matches).or_else(|| if want.is_none() { kafka.client_listeners().next() } else { None })?;
    let first = host.split('.').next().unwrap_or(host);
    match kafka.flavor {
        Flavor::Strimzi { .. } => {
            let name = cx.w.objects[kafka.object].name;
            let h = if first.starts_with(&format!("{name}-kafka-")) { host.to_string() } else { format!("{name}-kafka-bootstrap") };
            Some(format!("{h}:{}", l.port))
        }
        Flavor::Broker { container } => {
            let c = &cx.w.containers[container];
            // A ClusterIP Service before a headless one: clients bootstrap through it.
            let mut services: Vec<_> = cx.w.services.iter().filter(|s| cx.w.selected_pods(s).contains(&c.pod)).collect();
            services.sort_by_key(|s| s.headless);
            for s in services {
                let target_of = |t: Option<&str>, port: u16| match t.map(|t| t.parse::<u16>()) {
                    None => Some(port),
                    Some(Ok(n)) => Some(n),
                    Some(Err(_)) => c.ports.iter().find(|(n, _)| *n == t).map(|(_, p)| *p),
                };
                if let Some(sp) = s.ports.iter().find(|p| target_of(p.target, p.port) == Some(l.port)) {
                    let name = cx.w.service_name(s);
                    let h = if first == name { host } else { name };
                    return Some(format!("{h}:{}", sp.port));
                }
            }
            None
        }
    }
}

fn fix_address(cx: &Cx, client: &Client, kafka: &Kafka, host: &str) -> String {
    let want = Some((client.security.sasl, client.security.tls));
    let brokers = var(cx, client, "BROKERS");
    match listener_address(cx, kafka, host, want).or_else(|| listener_address(cx, kafka, host, None)) {
        Some(a) => match client.kind {
            Kind::Minio(t) => format!("{brokers}: {a} (or `mc admin config set ALIAS {} brokers={a}`)", cx.targets[t].subsystem()),
            Kind::Processor(_) => format!("{brokers}: {a}"),
        },
        None => format!(
            "{brokers}: a Service port that goes to a client listener of {} ({})",
            cx.kafka_label(kafka),
            kafka.describe_listeners()
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn security(cx: &Cx, client: &Client, k: &Kafka, l: &Listener, host: &str, port: u16, found: &mut Vec<Found>) {
    let s = &client.security;
    let who = who(cx, client);
    let listener = format!("{host}:{port} is listener {} of {} ({})", l.name, cx.kafka_label(k), l.protocol());
    let brokers_site = client.brokers.at.site();
    let minio = matches!(client.kind, Kind::Minio(_));
    let other = |sasl: bool, tls: bool| {
        listener_address(cx, k, host, Some((sasl, tls)))
            .map(|a| {
                format!(
                    "; or point {} at {a}, a {} listener",
                    var(cx, client, "BROKERS"),
                    if sasl {
                        "SASL"
                    } else if tls {
                        "TLS"
                    } else {
                        "PLAINTEXT"
                    }
                )
            })
            .unwrap_or_default()
    };
    let listener_sasl = matches!(l.auth, Auth::Sasl(_));
    if listener_sasl && !s.sasl {
        let fix = match client.kind {
            Kind::Minio(t) => {
                let t = &cx.targets[t];
                let mech = match &l.auth {
                    Auth::Sasl(m) => minio_mechanism(m.first().map(String::as_str).unwrap_or("PLAIN")),
                    _ => "plain",
                };
                format!(
                    "{}=on, {} and {} (from a secretKeyRef), {}={mech} (or `mc admin config set ALIAS {} sasl=on sasl_username=… sasl_password=… sasl_mechanism={mech}`){}",
                    t.var_name("SASL"),
                    t.var_name("SASL_USERNAME"),
                    t.var_name("SASL_PASSWORD"),
                    t.var_name("SASL_MECHANISM"),
                    t.subsystem(),
                    other(false, l.tls)
                )
            }
            Kind::Processor(_) => format!(
                "KAFKA_SECURITY_PROTOCOL={} with KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, if the processor reads them (the processor contract has no SASL){}",
                l.protocol(),
                other(false, l.tls)
            ),
        };
        let how = if minio {
            format!("no {}=on", var(cx, client, "SASL"))
        } else {
            "no KAFKA_SECURITY_PROTOCOL or KAFKA_SASL_* variables".into()
        };
        found.push((
            "sasl-mismatch",
            brokers_site.clone(),
            format!(
                "{listener}, but {who} does not use SASL ({how}): the broker gets a METADATA request where it expects the SASL handshake, logs `Unexpected Kafka request of type METADATA during SASL handshake` and closes the connection; {}",
                if minio { "the target stays offline and no event reaches Kafka" } else { "the processor never consumes" }
            ),
            fix,
        ));
    } else if !listener_sasl && s.sasl {
        found.push((
            "sasl-mismatch",
            s.sasl_site.clone().unwrap_or(brokers_site.clone()),
            format!(
                "{listener}, which has no SASL, but {who} starts a SASL handshake: the broker answers with an error and closes the connection; {}",
                if minio { "the target stays offline and no event reaches Kafka" } else { "the processor never consumes" }
            ),
            format!("{} (drop the SASL variables){}", if minio { format!("{}=off", var(cx, client, "SASL")) } else { format!("KAFKA_SECURITY_PROTOCOL={}", l.protocol()) }, other(true, l.tls)),
        ));
    } else if let (Auth::Sasl(enabled), Some(mech)) = (&l.auth, &s.mechanism) {
        if !enabled.is_empty() && !enabled.contains(mech) {
            let fix = if minio {
                format!("{}={}", var(cx, client, "SASL_MECHANISM"), minio_mechanism(&enabled[0]))
            } else {
                format!("KAFKA_SASL_MECHANISM={}", enabled[0])
            };
            found.push((
                "sasl-mechanism",
                brokers_site.clone(),
                format!(
                    "{listener}, which enables SASL mechanisms {}, but {who} authenticates with {mech}{}: the handshake fails with UnsupportedSaslMechanism and the client never connects",
                    enabled.join(", "),
                    if minio && mech == "PLAIN" { " (MinIO's default)" } else { "" }
                ),
                fix,
            ));
        }
    }
    if l.tls && !s.tls {
        let fix = if minio {
            format!(
                "{}=on (and the cluster CA in MinIO's certs/CAs, or {}=on for a test){}",
                var(cx, client, "TLS"),
                var(cx, client, "TLS_SKIP_VERIFY"),
                other(listener_sasl, false)
            )
        } else {
            format!("KAFKA_SECURITY_PROTOCOL={}{}", l.protocol(), other(listener_sasl, false))
        };
        found.push((
            "tls-mismatch",
            brokers_site.clone(),
            format!(
                "{listener}, which is TLS, but {who} speaks plaintext: the broker expects a TLS handshake, fails it (`SSL handshake failed`) and closes the connection; the client never connects"
            ),
            fix,
        ));
    } else if !l.tls && s.tls {
        found.push((
            "tls-mismatch",
            s.tls_site.clone().unwrap_or(brokers_site.clone()),
            format!(
                "{listener}, which is plaintext, but {who} starts a TLS handshake: the broker reads the TLS hello as a request size and closes the connection (`Invalid receive (size = 369295616 larger than 104857600)`)"
            ),
            if minio { format!("{}=off{}", var(cx, client, "TLS"), other(listener_sasl, true)) } else { format!("KAFKA_SECURITY_PROTOCOL={}", l.protocol()) },
        ));
    } else if l.auth == Auth::Mtls && !s.cert {
        let fix = if minio {
            format!(
                "{} and {}: the files of a KafkaUser's certificate (authentication: tls), mounted from its Secret",
                var(cx, client, "CLIENT_TLS_CERT"),
                var(cx, client, "CLIENT_TLS_KEY")
            )
        } else {
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION: a KafkaUser's certificate, if the processor reads them".into()
        };
        found.push((
            "tls-mismatch",
            brokers_site,
            format!("{listener}, which requires client certificates (authentication: tls), but {who} presents none: the TLS handshake fails and the client never connects"),
            fix,
        ));
    }
}

/// MinIO's `sasl_mechanism` value for Kafka's mechanism name.
fn minio_mechanism(kafka: &str) -> &'static str {
    match kafka {
        "SCRAM-SHA-512" => "sha512",
        "SCRAM-SHA-256" => "sha256",
        _ => "plain",
    }
}
