"""``python -m archsearch.report <run folder> [--output FILE] [--no-png]``: write report.html again."""

from archsearch.report.html import main

if __name__ == "__main__":
    raise SystemExit(main())
