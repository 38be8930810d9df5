//! A port where something answers, but not Kafka: an HTTP server that says 400 to
//! everything, like an operator's HTTP port MinIO's Kafka target gets pointed at.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Runs until dropped.
#[derive(Debug)]
pub struct HttpDecoy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl HttpDecoy {
    /// Binds a free port on 127.0.0.1 and answers every connection with a 400.
    pub async fn start() -> std::io::Result<HttpDecoy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Ok(HttpDecoy { port, task })
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpDecoy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn answers_http_400_and_is_no_kafka_listener() {
        let decoy = HttpDecoy::start().await.unwrap();
        let mut c = tokio::net::TcpStream::connect(decoy.address()).await.unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert!(got.starts_with("HTTP/1.1 400"), "{got}");
        let probe = crate::fault::kafka_probe(&decoy.address()).await;
        assert!(probe.is_err(), "{probe:?}");
    }
}
