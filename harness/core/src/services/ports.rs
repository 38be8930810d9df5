//! Free TCP ports on 127.0.0.1, picked by the OS.
//!
//! A port is picked by binding `127.0.0.1:0`, reading the port and closing the
//! socket. Someone else may take it before the service binds it, so callers
//! retry the whole start with fresh ports when a service reports "address
//! already in use".

use std::net::{Ipv4Addr, TcpListener};

/// `n` distinct free ports. All listeners are held until every port is picked,
/// so the OS cannot hand out the same port twice.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0))).collect::<std::io::Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// True when a log excerpt says a bind failed because the port was taken.
/// Kafka says "Address already in use", MinIO "Port is already in use" or
/// "address already in use".
pub fn says_port_in_use(log: &str) -> bool {
    let lower = log.to_ascii_lowercase();
    lower.contains("address already in use") || lower.contains("port is already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_distinct_bindable_ports() {
        let ports = free_ports(4).unwrap();
        assert_eq!(ports.len(), 4);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "ports must be distinct: {ports:?}");
        // (Not re-bound here: another process may legitimately take a released
        // port at any moment, which is why starts retry on "already in use".)
        assert!(ports.iter().all(|&p| p != 0));
    }

    #[test]
    fn recognises_bind_failures_of_both_services() {
        assert!(says_port_in_use(
            "org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:4242: Address already in use."
        ));
        assert!(says_port_in_use("ERROR Unable to start the server: Port is already in use"));
        assert!(says_port_in_use("listen tcp 127.0.0.1:9000: bind: address already in use"));
        assert!(!says_port_in_use("Kafka Server started"));
    }
}
