"""CLI: `duplexbot policy get|set|clear|list`, `duplexbot calls`, `duplexbot trace`, `duplexbot bench redis`.

Which store: --redis-url, else $REDIS_URL, else the embedded server of the `duplexbot serve`
running here (its runtime file; with several bots, the one on --port / $DUPLEXBOT_PORT)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from . import Subcommands

if TYPE_CHECKING:
    from bot.state.policy import BargeInPolicy
    from bot.state.policy_store import PolicyStore, Scope

# a subcommand's work against the store, run by `_run` once the store is reached
StoreCommand = Callable[["PolicyStore", argparse.Namespace], Awaitable[int]]


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    p = sub.add_parser("policy", help="barge-in policies per tenant / dialled number (in Redis)")
    psub = p.add_subparsers(dest="policy_cmd", required=True)

    def scope_args(q: argparse.ArgumentParser, required: bool) -> None:
        g = q.add_mutually_exclusive_group(required=required)
        g.add_argument("--tenant", help="tenant name")
        g.add_argument("--number", help="dialled number (e.g. +15550100)")
        target_args(q)
        q.add_argument("--json", action="store_true", help="print JSON")

    g = psub.add_parser("get", help="the effective policy for a tenant (and dialled number), with sources")
    g.add_argument("--tenant", default="default")
    g.add_argument("--number", default="", help="dialled number whose overrides apply on top")
    target_args(g)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=policy_get)

    s = psub.add_parser("set", help="set fields, e.g. interruption_sensitivity=0.7 backchannel=ignore")
    scope_args(s, True)
    s.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    s.add_argument("--replace", action="store_true", help="replace this scope's overrides instead of merging")
    s.set_defaults(func=policy_set)

    c = psub.add_parser("clear", help="remove overrides (all, or the named fields) from a scope")
    scope_args(c, True)
    c.add_argument("fields", nargs="*")
    c.set_defaults(func=policy_clear)

    ls = psub.add_parser("list", help="every stored tenant / number override, and the defaults")
    target_args(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=policy_list)

    lc = sub.add_parser("calls", help="live calls of every worker (from Redis)")
    lc.add_argument("--tenant", default=None)
    target_args(lc)
    lc.add_argument("--json", action="store_true")
    lc.set_defaults(func=calls_list)

    tr = sub.add_parser("trace", help="one call's audit trail in order (decisions, transcripts as heard, "
                                      "transfers, supervisor actions), or --recent calls")
    tr.add_argument("call_id", nargs="?", metavar="CALL_ID",
                    help="the call's id as `--recent` shows it (or its h-... key)")
    tr.add_argument("--recent", nargs="?", type=int, const=20, default=None, metavar="N",
                    help="list the latest N stored calls with their ids (default 20)")
    target_args(tr)
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=trace_cmd)

    b = groups["bench"].add_parser("redis", help="event-log throughput and Redis memory per live call")
    b.add_argument("--calls", default="1,10,100", help="comma-separated concurrent call counts")
    b.add_argument("--events", type=int, default=600, help="events per call (600 ~ a 5-minute call)")
    b.add_argument("--redis-url", default=None, help="benchmark this server instead of a private embedded one")
    b.add_argument("--out", default=None, help="write the JSON result to this file")
    b.set_defaults(func=bench_redis)


def target_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--redis-url", default=None, help="default: $REDIS_URL, else the server `duplexbot serve` runs")
    q.add_argument("--port", type=int, default=None,
                   help="with several `duplexbot serve` here: the one on this HTTP port (default: $DUPLEXBOT_PORT)")


def _resolve_url(arg: str | None, port: int | None = None) -> str:
    """The store's URL. Raises runtime_file.NoBot with what to do when there is none to pick."""
    from bot.state import runtime_file
    from bot.state.settings import StateSettings

    if arg:
        return arg
    settings = StateSettings.from_env(os.environ)  # the CLI is a composition root of its own
    if settings.redis_url:
        return settings.redis_url
    bots = runtime_file.live_bots(settings)
    env_port = os.environ.get("DUPLEXBOT_PORT", "")
    if port is None and len(bots) > 1 and env_port.isdigit():
        port = int(env_port)  # only to break a tie: one running bot is the one, whatever the env says
    where = settings.runtime_file or str(runtime_file.bots_dir(settings.runtime_dir))
    return runtime_file.choose(bots, port, where).url


def _run(coro_fn: StoreCommand, args: argparse.Namespace) -> int:
    from bot.config import ConfigError
    from bot.state.policy import PolicyError
    from bot.state.runtime_file import NoBot

    try:
        url = _resolve_url(getattr(args, "redis_url", None), getattr(args, "port", None))
        from bot.state.settings import StateSettings

        state = StateSettings.from_env(os.environ)
    except (NoBot, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    async def main() -> int:
        import redis.asyncio as aredis

        from bot.state.keys import Keys
        from bot.state.policy_store import PolicyStore

        r = aredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        try:
            store = PolicyStore(r, Keys(state.prefix))
            return await coro_fn(store, args)
        finally:
            await r.aclose()

    try:
        return asyncio.run(main())
    except PolicyError as e:
        print(f"error: invalid policy: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot reach Redis at {url}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # redis errors: ConnectionError etc.
        if type(e).__module__.startswith("redis"):
            print(f"error: Redis at {url}: {e}", file=sys.stderr)
            return 1
        raise


def _scope(args: argparse.Namespace) -> Scope:
    from bot.state.policy_store import Scope

    return Scope(tenant=args.tenant) if args.tenant is not None else Scope(number=args.number)


def _print_policy(policy: dict[str, Any], sources: dict[str, str] | None = None) -> None:
    for k, v in policy.items():
        src = f"   ({sources[k]})" if sources else ""
        print(f"  {k:<26} {json.dumps(v)}{src}")


def policy_get(args: argparse.Namespace) -> int:
    async def go(store: PolicyStore, args: argparse.Namespace) -> int:
        resolved = await store.resolve(args.tenant, args.number or "")
        if args.json:
            print(json.dumps({"tenant": args.tenant, "number": args.number, **resolved.to_dict(),
                              "settings": _settings_dict(resolved.policy)}, indent=2))
        else:
            print(f"effective barge-in policy for tenant {args.tenant!r}"
                  + (f", number {args.number}" if args.number else ""))
            _print_policy(resolved.policy.to_dict(), resolved.sources)
        return 0
    return _run(go, args)


def _settings_dict(policy: BargeInPolicy) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(policy.to_settings())


def policy_set(args: argparse.Namespace) -> int:
    async def go(store: PolicyStore, args: argparse.Namespace) -> int:
        from bot.state.policy import parse_assignment

        over = dict(parse_assignment(a) for a in args.assignments)
        stored = await store.set(_scope(args), over, replace=args.replace)
        if args.json:
            print(json.dumps({**_scope(args).to_dict(), "overrides": stored}))
        else:
            print(f"stored for {_label(args)}: {json.dumps(stored, sort_keys=True)} (live calls pick it up now)")
        return 0
    return _run(go, args)


def policy_clear(args: argparse.Namespace) -> int:
    async def go(store: PolicyStore, args: argparse.Namespace) -> int:
        stored = await store.clear(_scope(args), list(args.fields) or None)
        print(json.dumps({**_scope(args).to_dict(), "overrides": stored}) if args.json
              else f"{_label(args)} now overrides: {json.dumps(stored, sort_keys=True) if stored else 'nothing'}")
        return 0
    return _run(go, args)


def _label(args: argparse.Namespace) -> str:
    return f"tenant {args.tenant}" if args.tenant is not None else f"number {_scope(args).to_dict()['number']}"


def policy_list(args: argparse.Namespace) -> int:
    async def go(store: PolicyStore, args: argparse.Namespace) -> int:
        from bot.state.policy import DEFAULT_POLICY

        items = await store.list()
        if args.json:
            print(json.dumps({"defaults": DEFAULT_POLICY.to_dict(), "overrides": items}, indent=2))
            return 0
        print("defaults:")
        _print_policy(DEFAULT_POLICY.to_dict())
        if not items:
            print("no tenant or number overrides stored")
        for it in items:
            label = f"tenant {it['tenant']}" if "tenant" in it else f"number {it['number']}"
            print(f"{label}: {json.dumps(it['overrides'], sort_keys=True)}")
        return 0
    return _run(go, args)


def calls_list(args: argparse.Namespace) -> int:
    async def go(store: PolicyStore, args: argparse.Namespace) -> int:
        from bot.state.keys import for_display
        from bot.state.liveness import Liveness
        from bot.state.settings import StateSettings

        live = await Liveness(store.redis, StateSettings.from_env(os.environ), list).live_calls(args.tenant)
        if args.json:
            print(json.dumps(live, indent=2))
            return 0
        if not live:
            print("no live calls")
        for c in live:
            e = {k: for_display(c.get(k, "")) for k in ("call_id", "tenant", "transport", "worker", "caller", "callee")}
            print(f"{e['call_id']}  tenant={e['tenant']} transport={e['transport']} "
                  f"worker={e['worker']} from={e['caller']} to={e['callee']}"
                  + ("  [secure input]" if c.get("secure_input") == "1" else ""))
        return 0
    return _run(go, args)


def trace_cmd(args: argparse.Namespace) -> int:
    if args.call_id is None and args.recent is None:
        print("error: give a CALL_ID, or --recent [N] to list the latest calls", file=sys.stderr)
        return 2

    async def go(store: PolicyStore, args: argparse.Namespace) -> int:
        from bot.state import trace

        if args.call_id is None:
            calls = await trace.recent_calls(store.redis, store.keys, args.recent)
            print(json.dumps(calls, indent=2) if args.json else trace.format_recent(calls))
            return 0
        found = await trace.load_trace(store.redis, store.keys, args.call_id)
        if found is None:
            from bot.state.keys import for_display

            print(f"error: no call {for_display(args.call_id)!s} in the store (see `duplexbot trace --recent`)",
                  file=sys.stderr)
            return 1
        print(json.dumps(found.to_dict(), indent=2) if args.json else trace.format_trace(found))
        return 0
    return _run(go, args)


def bench_redis(args: argparse.Namespace) -> int:
    from bot.bench.state import format_table, run_bench

    try:
        calls = [int(x) for x in args.calls.split(",") if x.strip()]
    except ValueError:
        print(f"error: --calls takes comma-separated integers, got {args.calls!r}", file=sys.stderr)
        return 2
    if not calls or min(calls) < 1 or args.events < 1:
        print("error: --calls and --events must be positive", file=sys.stderr)
        return 2
    result = asyncio.run(run_bench(calls, args.events, args.redis_url))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    print(format_table(result))
    print(json.dumps(result))
    return 0
