"""Read `salt-run state.orchestrate --out=json` results: per-minion state changes and failures."""

from __future__ import annotations


def orch_states(orch: dict) -> dict:
    """The orchestration's own states ({step id: result}) from the runner's JSON output."""
    data = orch.get("data", orch)
    if len(data) == 1 and isinstance(next(iter(data.values())), dict):
        inner = next(iter(data.values()))
        if all(isinstance(v, dict) and "result" in v for v in inner.values()):
            return inner
    return data


def minion_states(orch: dict):
    """Yield (step, minion, state_id, state_result) for every state every step ran. A minion
    that returned errors instead of states (render errors) yields one failed '(render)' state."""
    for step, result in orch_states(orch).items():
        if not isinstance(result, dict):
            continue
        ret = (result.get("changes") or {}).get("ret") or {}
        for minion, states in ret.items():
            if isinstance(states, list):
                comment = "\n".join(str(s) for s in states)
                yield step, minion, "(render)", {"result": False, "comment": comment}
            elif isinstance(states, dict):
                for state_id, sret in states.items():
                    if isinstance(sret, dict):
                        yield step, minion, state_id, sret


def state_name(state_id: str) -> str:
    """'file_|-ID_|-NAME_|-managed' -> 'ID (file.managed)'."""
    parts = state_id.split("_|-")
    if len(parts) == 4:
        return f"{parts[1]} ({parts[0]}.{parts[3]})"
    return state_id


def changed(orch: dict) -> list[str]:
    """'minion: state id' for every state that reported changes."""
    return [f"{m}: {sid}" for _, m, sid, r in minion_states(orch) if r.get("changes")]


def failures(orch: dict) -> list[tuple[str, str, str, str]]:
    """(step, host, state, comment) for each failed minion state; a failed step with no failed
    minion state (the step itself failed, e.g. no minion matched) gets host '-'."""
    out = [
        (step, m, state_name(sid), str(r.get("comment") or ""))
        for step, m, sid, r in minion_states(orch)
        if r.get("result") is False
    ]
    steps_with_states = {f[0] for f in out}
    out += [
        (step, "-", step, str(r.get("comment") or ""))
        for step, r in orch_states(orch).items()
        if isinstance(r, dict) and r.get("result") is False and step not in steps_with_states
    ]
    return out


def failed(orch: dict) -> list[str]:
    """Failed orchestration steps and failed minion states, with their comments; an
    orchestration that did not render (the master answers a list of errors) is one failure."""
    out = [
        f"{step}: {r.get('comment')}"
        for step, r in orch_states(orch).items()
        if isinstance(r, dict) and r.get("result") is False
    ]
    out += [f"{master}: {' '.join(str(e) for e in errors)}"
            for master, errors in orch_states(orch).items() if isinstance(errors, list)]
    out += [
        f"{m}: {sid}: {r.get('comment')}"
        for _, m, sid, r in minion_states(orch)
        if r.get("result") is False
    ]
    return out


def shorten(text: str, width: int = 300, lines: int = 4) -> str:
    """The first `lines` lines of text, at most `width` characters, marked when cut."""
    rows = [row.rstrip() for row in str(text).strip().splitlines() if row.strip()]
    short = "\n".join(rows[:lines])
    cut = len(rows) > lines
    if len(short) > width:
        short, cut = short[:width], True
    return short + (" [...]" if cut else "")
