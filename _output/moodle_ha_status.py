"""
Outputter of ``salt-run moodle_ha.status``: one line per host and layer, then the verdict.

Green ``OK``, red ``FAIL``, plain ``--`` for information; colours follow Salt's ``--no-color``
and ``--force-color``.
"""

import salt.utils.color

__virtualname__ = "moodle_ha_status"


def __virtual__():
    return __virtualname__


def output(data, **kwargs):
    """Render the runner's report (``checks``, ``verdict``) as text."""
    if not isinstance(data, dict) or "checks" not in data:
        return str(data)
    colors = salt.utils.color.get_colors(__opts__.get("color"), __opts__.get("color_theme"))
    marks = {True: (colors["GREEN"], "OK  "), False: (colors["RED"], "FAIL"),
             None: ("", "--  ")}
    width = max((len(c["host"]) for c in data["checks"]), default=4)
    lines = []
    for check in data["checks"]:
        color, mark = marks[check["ok"]]
        end = colors["ENDC"] if color else ""
        lines.append(f"{color}{mark}{end} {check['host']:<{width}}  {check['layer']:<12} "
                     f"{check['text']}")
    color = colors["GREEN"] if data.get("ok") else colors["RED"]
    lines.append(f"{color}{data.get('verdict')}{colors['ENDC']} ({data.get('seconds')} s)")
    return "\n".join(lines)
