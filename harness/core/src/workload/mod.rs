//! The workload: images generated from the seed, uploaded on an open-loop schedule.

mod images;
mod upload;

pub use images::{generate, GeneratedImage};
pub use upload::{run_uploads, stopped, UploadProgress};
