"""axe-core (the copy shipped in the pinned axe-playwright-python package) run inside a
Playwright page; the WCAG 2.2 AA rule set, target size included."""
from functools import lru_cache
from importlib import resources

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@lru_cache(maxsize=1)
def axe_source() -> str:
    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8")


def violations(page, allowed: tuple[str, ...] = ()) -> list[str]:
    """One line per violated rule and element; empty when the page passes. Evaluated in the
    page's context (not a <script> tag), so our Content-Security-Policy does not stop it.
    ``allowed``: rule ids a caller excuses, each with its reason beside the call."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
                           TAGS)
    return [f"{v['id']} ({v['impact']}): {node['target']} {node.get('failureSummary', '')[:160]}"
            for v in result["violations"] for node in v["nodes"] if v["id"] not in allowed]
