//! What `harness lint` reads at most (#22): outside YAML is bounded, and a bound hit is
//! an `input-too-large` finding naming the file and the bound, never an abort. Real
//! manifests (a rendered Helm chart with its CRDs is a few MiB, a few thousand
//! documents, 20 levels deep, aliases rare) stay far below each.

/// Bytes of one file (or stdin): a larger one is not read at all.
pub const FILE_BYTES: u64 = 16 << 20;
/// Bytes of all files of a set together: the files past it are not read.
pub const TOTAL_BYTES: u64 = 256 << 20;
/// Files a folder walk reads: the walk stops there.
pub const FILES: usize = 10_000;
/// Nodes of one file (scalars, sequences, mappings), aliases expanded.
pub const NODES: usize = 1_000_000;
/// Nodes one file's aliases copy, all aliases together.
pub const ALIAS_NODES: usize = 100_000;
/// Scalar bytes one file's aliases copy, all aliases together.
pub const ALIAS_BYTES: usize = 16 << 20;
/// Nesting of sequences and mappings.
pub const DEPTH: usize = 128;
/// `---` documents of one file.
pub const DOCUMENTS: usize = 50_000;

/// `16 MiB` for a size in bytes that is a whole number of MiB, else `1234 bytes`.
pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}
