//! The engine: environments, services, workload, observers, checks and reports.
//!
//! A run goes provision → start → ready → workload → drain → check → report →
//! teardown; `run` drives that lifecycle, the other modules are its parts.

pub mod env;
mod errtext;
pub mod observe;
pub mod report;
pub mod run;
pub mod services;
pub mod workload;
