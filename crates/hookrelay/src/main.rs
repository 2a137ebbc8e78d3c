use clap::Parser;

// mimalloc: the delivery path allocates many small, short-lived buffers across threads;
// measured faster than the system allocator in hookrelay-bench (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    hookrelay::cli::main(hookrelay::cli::Cli::parse())
}
