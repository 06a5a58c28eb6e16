//! The `cronmesh` binary: the CLI with the built-in tasks.

use std::process::ExitCode;

/// mimalloc rather than the system allocator: a node allocates on many threads (SQLite
/// workers, the handler runtime, the actors) and frees across them, which leaves glibc's
/// malloc with fragmented arenas, a resident size several times the live heap, and slow
/// consolidation at start-up with a million tasks (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cronmesh::cli::run(scheduler_actors::CodeTasks::from_inventory())
}
