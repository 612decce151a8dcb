"""Where the shared real samples and format notes are (``shared/`` beside the checkout)."""

from pathlib import Path

# shared/ lies beside the checkout (or beside the folder of worktrees), here and in CI: the
# nearest ancestor that has shared/samples wins.
_HERE = Path(__file__).resolve()
SHARED = next(
    (p / "shared" for p in _HERE.parents if (p / "shared" / "samples").is_dir()),
    _HERE.parents[3] / "shared",
)
SAMPLES = SHARED / "samples"
