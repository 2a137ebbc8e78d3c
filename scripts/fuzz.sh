#!/usr/bin/env bash
# A bounded cargo-fuzz run of every target (CI runs it; see docs/security.md "Fuzzing").
# Each target runs FUZZ_SECONDS (default 30) from the committed seeds in fuzz/seeds/<target>
# plus whatever fuzz/corpus/<target> has gathered locally. A crash fails the script and
# leaves the input in fuzz/artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "SKIPPED: fuzzing needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# No sanitizer: the code under test is safe Rust, so what the fuzzer hunts is panics and
# broken invariants; AddressSanitizer would only double the build and halve the speed.
for target in request_bodies url_guard cursor duplicate_keys; do
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1
done
