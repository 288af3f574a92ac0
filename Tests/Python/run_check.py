"""Runs a check's async main; on failure prints the innermost causes (task groups wrap them) and exits 1."""
import asyncio
import sys


def run_check(main) -> None:
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - the test reads the message
        causes = [error]
        while any(isinstance(c, BaseExceptionGroup) for c in causes):
            causes = [inner for c in causes for inner in (c.exceptions if isinstance(c, BaseExceptionGroup) else [c])]
        for cause in causes:
            print(f"error: {type(cause).__name__}: {cause}", file=sys.stderr)
        sys.exit(1)
