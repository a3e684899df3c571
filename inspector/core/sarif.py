"""A set scan as a SARIF 2.1.0 log, what GitHub code scanning and CI dashboards read: one result
per dangerous or unknown global, per differential read and per unreadable file.

The location of a global is its file; the pickle member and the byte offset inside that pickle
are its logical location and location properties (the offset is not one into the file itself).
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from .globals_policy import TORCH_VERSION, Family, judge_qualname
from .scan_set import FileScan, SetScan

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "checkpoint-inspector"

UNKNOWN_RULE = "unknown-global"
DIFFERENTIAL_RULE = "differential-read"
UNREADABLE_RULE = "unreadable-file"


def _family_rule(family: Family) -> str:
    return "dangerous-" + family.name.lower().replace("_", "-")


def _rules() -> list[dict[str, Any]]:
    rules = [
        _rule(_family_rule(f), f"A global that {f.value}.", "error", f"Dangerous global: it {f.value}.")
        for f in Family
    ]
    rules.append(
        _rule(
            UNKNOWN_RULE,
            "A global outside torch's weights-only set.",
            "warning",
            "torch.load(weights_only=True) refuses it unless it is allowed; it is not known to be safe.",
        )
    )
    rules.append(
        _rule(
            DIFFERENTIAL_RULE,
            "A file other readers would read differently.",
            "error",
            "What torch would run may not be what the static read saw.",
        )
    )
    rules.append(
        _rule(UNREADABLE_RULE, "A file that could not be read.", "error", "It is not shown as safe.")
    )
    return rules


def _rule(rule_id: str, short: str, level: str, full: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "defaultConfiguration": {"level": level},
    }


def artifact_uri(path: str) -> str:
    """A path as a URI reference: relative (with forward slashes) below the working folder, else a
    ``file://`` URI."""
    absolute = os.path.abspath(path)
    here = os.getcwd()
    if os.path.commonpath([absolute, here]) == here:
        return urllib.parse.quote(os.path.relpath(absolute, here).replace(os.sep, "/"))
    return "file://" + urllib.parse.quote(absolute.replace(os.sep, "/"))


def _result(
    rule_id: str, level: str, text: str, file_index: int, uri: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri, "index": file_index}},
    }
    props: dict[str, Any] = {"torchVersion": TORCH_VERSION}
    if extra:
        member, offset = extra.get("pickle"), extra.get("offset")
        if member is not None:
            location["logicalLocations"] = [
                {"name": member, "fullyQualifiedName": f"{member}@{offset}", "kind": "resource"}
            ]
            location["properties"] = {"pickleMember": member, "pickleByteOffset": offset}
        props.update({k: v for k, v in extra.items() if k not in ("pickle", "offset")})
    return {
        "ruleId": rule_id,
        "level": level,
        "message": {"text": text},
        "locations": [location],
        "properties": props,
    }


def _file_results(scan: FileScan, file_index: int) -> list[dict[str, Any]]:
    uri = artifact_uri(scan.path)
    name = os.path.basename(scan.path)
    results = []
    if scan.unreadable:
        results.append(_result(UNREADABLE_RULE, "error", scan.error, file_index, uri))
    for g in scan.unsafe_globals:
        if g["verdict"] == "dangerous":
            family = judge_qualname(g["name"]).family or Family.MALFORMED
            rule, level = _family_rule(family), "error"
            why = f"it {family.value}"
        else:
            rule, level, why = UNKNOWN_RULE, "warning", "it is outside torch's weights-only set"
        text = (
            f"{name} references {g['name']} ({g['verdict']}: {why}) in pickle {g['pickle']} at byte "
            f"{g['offset']} ({g['count']} times in all); judged against torch {TORCH_VERSION}."
        )
        extra = {
            "global": g["name"], "verdict": g["verdict"], "pickle": g["pickle"], "offset": g["offset"],
            "count": g["count"], "occurrences": g["occurrences"],
        }  # fmt: skip
        results.append(_result(rule, level, text, file_index, uri, extra))
    for sentence in scan.differentials:
        results.append(_result(DIFFERENTIAL_RULE, "error", f"{name}: {sentence}", file_index, uri))
    return results


def sarif_log(scans: SetScan, tool_version: str) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a set scan (strings from files kept as data: JSON escapes them)."""
    artifacts = [{"location": {"uri": artifact_uri(f.path)}, "length": _size(f.path)} for f in scans.files]
    results = [r for i, f in enumerate(scans.files) for r in _file_results(f, i)]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version,
                        "rules": _rules(),
                        "properties": {"torchVersion": TORCH_VERSION},
                    }
                },
                "artifacts": artifacts,
                "results": results,
                "properties": {"torchVersion": TORCH_VERSION, "skippedFiles": scans.skipped},
            }
        ],
    }


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1
