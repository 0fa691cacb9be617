"""Copy the measured tables from ``results/*.md`` into ``README.md`` (between the markers).

Run after the benchmarks: ``python benchmarks/collect.py``. Nothing in the README's results
section is typed by hand; each table names the machine it ran on.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = [
    "bench_ops",
    "bench_loss",
    "bench_miner",
    "bench_sentiment_vector",
    "bench_metrics",
    "bench_train_step",
]


def main() -> None:
    parts = []
    for name in ORDER:
        for f in sorted((HERE / "results").glob(f"{name}-*.md")):
            parts.append(f.read_text().strip())
    readme = HERE / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n\n" + "\n\n".join(parts) + "\n\n" + END + tail)
    print(f"wrote {len(parts)} tables into {readme}")


if __name__ == "__main__":
    main()
