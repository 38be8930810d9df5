//! The harness engine: environments, services, workload, observers, faults, checks
//! and reports (`engine` is the container engine connection and its images).
//!
//! A run goes provision → start → ready → workload → drain → check → report →
//! teardown; `run` drives that lifecycle, the other modules are its parts.

pub mod class;
pub mod clock;
pub mod doctor;
pub mod engine;
pub mod env;
pub mod fault;
pub mod netfault;
pub mod observe;
pub mod regress;
pub mod report;
pub mod run;
pub mod services;
pub mod status;
pub mod workload;
