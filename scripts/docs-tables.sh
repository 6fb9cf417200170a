#!/usr/bin/env bash
# Rewrites the generated tables of docs/*.md (the regions between `<!-- generated: joule
# docs-tables render ... -->` and `<!-- end generated -->`) from the committed run summaries
# they name. `crates/lab/tests/doc_tables.rs` fails while a region differs from its render.
#
#   scripts/docs-tables.sh            # rewrite
#   scripts/docs-tables.sh --check    # change nothing; exit 2 if a region is out of date
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p joule-cli
files=$(grep -l -- '<!-- generated: joule docs-tables' docs/*.md)
# shellcheck disable=SC2086
target/release/joule docs-tables update "$@" $files
