"""`ticker users`: editor accounts for the console (add, list, disable, enable, reset).

Passwords are read from the terminal (twice), or from standard input with
``--password-stdin`` (one line, for scripts); they never go on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ticker.config import Settings
from ticker.constants import Keys
from ticker.desk import accounts
from ticker.exceptions import ClientError, TickerError
from ticker.helpformat import HelpFormatter
from ticker.redis_conn import connect

__all__ = ["main"]


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise ClientError("the two passwords differ", "password")
    return first


async def _with_redis(settings: Settings, job: Callable[[Any, Keys], Awaitable[int]]) -> int:
    conns = connect(settings)
    try:
        return await job(conns.data, Keys(settings.redis_prefix))
    finally:
        await conns.aclose()


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()

    async def job(redis: Any, keys: Keys) -> int:
        if args.action == "add":
            editions = [e.strip() for e in args.editions.split(",") if e.strip()] or None
            account = await accounts.add_user(
                redis, keys, args.name, _password(args), args.role, editions, settings.editions
            )
            print(f"added {account.name} ({account.role}, editions: {args.editions or 'all'})")
        elif args.action == "list":
            for a in await accounts.list_users(redis, keys):
                shown = ",".join(sorted(a.editions)) if a.editions else "all"
                state = "disabled" if a.disabled else "active"
                print(f"{a.name}\t{a.role}\t{shown}\t{state}")
        elif args.action in ("disable", "enable"):
            await accounts.set_disabled(redis, keys, args.name, args.action == "disable")
            print(
                f"{args.name} {args.action}d; open sessions ended"
                if args.action == "disable"
                else f"{args.name} enabled"
            )
        elif args.action == "reset":
            await accounts.reset_password(redis, keys, args.name, _password(args))
            print(f"password of {args.name} reset; open sessions ended")
        return 0

    try:
        return asyncio.run(_with_redis(settings, job))
    except ClientError as exc:
        print(f"ticker users: {exc.field or 'error'}: {exc.message}", file=sys.stderr)
        return 2
    except TickerError as exc:
        print(f"ticker users: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        formatter_class=HelpFormatter, prog="ticker users", description=__doc__
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", choices=sorted(accounts.ROLES), default="editor")
    add.add_argument("--editions", default="", help="comma list; empty: every edition")
    sub.add_parser("list", help="list accounts")
    for action, text in [
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable a disabled account"),
        ("reset", "set a new password and end the account's sessions"),
    ]:
        p = sub.add_parser(action, help=text)
        p.add_argument("name")
    for p in (add, sub.choices["reset"]):
        p.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    return _run(parser.parse_args(argv))
