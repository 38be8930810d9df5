//! `harness-processor`: the reference image processor as a command.
//! Configured by the environment (see the crate docs); exit codes 0, 1, 2.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    harness_processor::main_from_env().await
}
