//! The engine's side of building: whether an image exists, and a build with its
//! context streamed to the engine as the tar is written.

use std::collections::VecDeque;
use std::io::{self, Write};

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;

use super::{ImageError, ImageSpec};

pub(super) async fn image_exists(docker: &Docker, reference: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(source) => Err(ImageError::Engine { context: format!("inspecting image {reference}"), source }),
    }
}

/// Sends `spec`'s build context (a tar streamed as it is written) to the
/// engine's build endpoint and follows the build to its end.
pub(super) async fn build(docker: &Docker, spec: &ImageSpec, reference: &str, progress: &dyn Fn(&str)) -> Result<(), ImageError> {
    let size_mb = spec.context.size_bytes() / 1_000_000;
    progress(&format!("image {}: building {reference} ({size_mb} MB context)…", spec.kind));
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(8);
    let context = spec.context.clone();
    let packer = tokio::task::spawn_blocking(move || {
        let on_error = tx.clone();
        let result = context.write_tar(ChannelWriter { tx, buf: Vec::new() }).and_then(|mut w| w.flush());
        if let Err(e) = &result {
            let _ = on_error.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk.map(Into::into), rx)) });
    let options = BuildImageOptionsBuilder::new().dockerfile("Dockerfile").t(reference).rm(true).forcerm(true).build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(body)));
    let mut tail = VecDeque::new();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                for line in info.stream.iter().flat_map(|s| s.lines()).map(str::trim_end) {
                    if line.trim().is_empty() {
                        continue;
                    }
                    if line.starts_with("STEP ") || line.starts_with("Step ") {
                        progress(&format!("  {line}"));
                    }
                    if tail.len() == 20 {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_string());
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                failure = Some(error);
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    drop(stream);
    let packed = packer.await.map_err(|e| io::Error::other(e.to_string())).and_then(|r| r);
    let tail: String = tail.iter().map(|l| format!("\n  {l}")).collect();
    let fail = |message: String| ImageError::Build { reference: reference.into(), message, tail: tail.clone() };
    if let Some(message) = failure {
        return Err(fail(message));
    }
    if let Err(e) = packed {
        return Err(fail(format!("sending the build context: {e}")));
    }
    if !image_exists(docker, reference).await? {
        return Err(fail("the engine reported no error but has no image by that name".into()));
    }
    Ok(())
}

/// A `Write` that hands 1 MiB chunks to an async channel (the request body).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading the build context"))
    }
}
