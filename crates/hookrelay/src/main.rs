// mimalloc: the delivery path allocates many small, short-lived buffers across threads;
// measured faster than the system allocator in hookrelay-bench (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match hookrelay::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The chain of causes on one line, not a debug dump.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
