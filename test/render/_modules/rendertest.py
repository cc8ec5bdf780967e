"""
Test-only execution module of the render tests (never synced to a minion): many SLS rendered
in one salt-call, each as `state.show_sls` and as its Jinja text (`slsutil.renderer`).
"""

__virtualname__ = "rendertest"


def __virtual__():
    return __virtualname__


def render_each(names, paths):
    """
    For each SLS of ``names`` (comma-separated) and its file in ``paths`` (comma-separated,
    same order): ``{"show": <state.show_sls answer>, "text": <rendered text> | None,
    "error": <why the text did not render> | None}``.

    CLI Example:

    .. code-block:: bash

        salt-call --local rendertest.render_each moodle_ha.web,moodle_ha.web.php \
            salt://moodle_ha/web/init.sls,salt://moodle_ha/web/php.sls
    """
    out = {}
    for name, path in zip(names.split(","), paths.split(","), strict=True):
        entry = {"show": __salt__["state.show_sls"](name), "text": None, "error": None}
        try:
            entry["text"] = __salt__["slsutil.renderer"](path, default_renderer="jinja",
                                                         sls=name)
        except Exception as exc:  # the test reports any render failure
            entry["error"] = f"{type(exc).__name__}: {exc}"
        out[name] = entry
    return out
