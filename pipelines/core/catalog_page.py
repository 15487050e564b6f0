"""The catalog page (index.html) of a published layout: what board teams browse."""

from __future__ import annotations

import html
import time
from typing import Any

from pipelines.core import evaluation, toolchains


def figures(manifest: dict[str, Any]) -> dict[str, float]:
    """The numbers worth a column, from each step's reports, as that step's toolchain reads them."""
    out: dict[str, float] = {}
    for step in manifest["steps"]:
        if "toolchain" not in step or step["toolchain"] not in toolchains.registry():
            continue  # a manifest from before steps named their toolchain
        for name, report in manifest["verification"].items():
            if name.rsplit("/", 1)[0] == step["id"]:
                out.update(toolchains.get(step["toolchain"]).figures(report))
    return out


def evaluations(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline scores of each evaluation the manifest records, and their differences to the FP32 export."""
    out = []
    for e in manifest.get("evaluation", []):
        shown = evaluation.headline(e["figures"])
        out.append({"set": e["set"]["name"], "figures": {k: e["figures"][k] for k in shown},
                     "delta": {k: e["delta"][k] for k in shown if k in e["delta"]}})
    return out


def _evaluation_cell(entry: dict[str, Any]) -> str:
    lines = [
        f"{html.escape(e['set'])}: " + ", ".join(
            f"{html.escape(k)} {v:.3f}" + (f" ({e['delta'][k]:+.3f} vs FP32)" if k in e["delta"] else "")
            for k, v in e["figures"].items())
        for e in entry.get("evaluation", [])
    ]
    return "<br>".join(lines) or "&mdash;"


def _preview_cell(entry: dict[str, Any]) -> str:
    if "preview" not in entry:
        return "&mdash;"
    src = html.escape(entry["preview"])
    return f'<a href="{src}"><img src="{src}" alt="keypoints found by this artifact" width="160"></a>'


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def render(index: dict[str, Any]) -> str:
    rows = []
    for recipe in sorted(index["recipes"]):
        for target in sorted(index["recipes"][recipe]):
            for version, e in sorted(index["recipes"][recipe][target].items(), key=lambda kv: -kv[1]["published"]):
                figs = "<br>".join(f"{html.escape(k)}: {v:.3g}" for k, v in sorted(e["verification"].items())) or "&mdash;"
                cmd = (f"posepipe download --recipe {recipe} --target {target} --version {version} "
                       f"--from URL_OF_THIS_PAGE --to ./{e['output']}" + (" --key PUBLISHER.pub" if e["signed"] else " --allow-unsigned"))
                rows.append(
                    f'<tr data-recipe="{html.escape(recipe)}" data-target="{html.escape(target)}">'
                    f"<td>{html.escape(recipe)}</td><td>{html.escape(target)}</td><td>{html.escape(e['toolchain'])}</td>"
                    f"<td>{html.escape(e['output'])}</td><td>{html.escape(version)}</td><td>{_size(e['size'])}</td>"
                    f"<td><code>{e['sha256'][:16]}&hellip;</code></td>"
                    f"<td>{time.strftime('%Y-%m-%d %H:%M', time.gmtime(e['published']))} UTC</td>"
                    f"<td>{'signed' if e['signed'] else 'unsigned'}</td><td>{html.escape(e.get('label', 'unknown'))}</td><td>{figs}</td>"
                    f"<td>{_evaluation_cell(e)}</td><td>{_preview_cell(e)}</td>"
                    f'<td><code class="cmd">{html.escape(cmd)}</code></td></tr>'
                )
    head = "".join(f"<th>{h}</th>" for h in ("recipe", "target", "toolchain", "folder", "version", "size", "sha256",
                                               "published", "signature", "label", "verification", "evaluation",
                                               "preview", "download"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>posepipe artifacts</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }} code.cmd {{ font-size: 12px; }}
</style></head>
<body><h1>posepipe artifacts</h1>
<p>{len(rows)} artifact version(s). Every file's sha256 is in its manifest; <code>posepipe download</code> (<code>pip install posepipe</code>) checks them and the signature.</p>
<table id="artifacts"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
