use clap::Parser;

fn main() -> anyhow::Result<()> {
    hookrelay::cli::main(hookrelay::cli::Cli::parse())
}
