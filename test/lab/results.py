"""Read `salt-run state.orchestrate --out=json` results: per-minion state changes and failures."""

from __future__ import annotations


def _orch_states(orch: dict) -> dict:
    """The orchestration's own states ({step id: result}) from the runner's JSON output."""
    data = orch.get("data", orch)
    if len(data) == 1 and isinstance(next(iter(data.values())), dict):
        inner = next(iter(data.values()))
        if all(isinstance(v, dict) and "result" in v for v in inner.values()):
            return inner
    return data


def minion_states(orch: dict):
    """Yield (step, minion, state_id, state_result) for every state every step ran."""
    for step, result in _orch_states(orch).items():
        ret = (result.get("changes") or {}).get("ret") or {}
        for minion, states in ret.items():
            if not isinstance(states, dict):
                continue
            for state_id, sret in states.items():
                if isinstance(sret, dict):
                    yield step, minion, state_id, sret


def changed(orch: dict) -> list[str]:
    """'minion: state id' for every state that reported changes."""
    return [f"{m}: {sid}" for _, m, sid, r in minion_states(orch) if r.get("changes")]


def failed(orch: dict) -> list[str]:
    """Failed orchestration steps and failed minion states, with their comments."""
    out = [
        f"{step}: {r.get('comment')}"
        for step, r in _orch_states(orch).items()
        if isinstance(r, dict) and r.get("result") is False
    ]
    out += [
        f"{m}: {sid}: {r.get('comment')}"
        for _, m, sid, r in minion_states(orch)
        if r.get("result") is False
    ]
    return out
