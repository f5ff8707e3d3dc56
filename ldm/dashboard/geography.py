"""Leeds boundaries for the maps, matched to the areas the published marts name.

The boundary files (ldm/reference/boundaries, with their attribution and how they were made) are the
MSOAs of 2011, whose codes the marts use, and the wards, dissolved from LSOA 2011 boundaries by the
LSOA-to-ward lookups and named as the marts name them (whose ward codes are of another vintage than
the lookup's, so wards are matched by name, "&" read as "and"). A published area with no boundary is
listed on the page. Single-area levels (ICB, sub-ICB, city) are drawn as Leeds, its wards filled
with the one value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

BOUNDARIES = Path(__file__).resolve().parents[1] / "reference" / "boundaries"
ATTRIBUTION = "Contains OS and ONS data © Crown copyright and database right 2016 (OGL v3)."


def _name(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("&", "and")).strip().lower()


def _features(file: str, code: str, name: str) -> list[dict]:
    data = json.loads((BOUNDARIES / file).read_text())
    return [
        {
            "type": "Feature",
            "geometry": f["geometry"],
            "properties": {"code": f["properties"][code], "name": f["properties"][name]},
        }
        for f in data["features"]
    ]


@dataclass
class Maps:
    """Named datasets of GeoJSON features (properties: code, name) and the areas left unmatched."""

    datasets: dict[str, list[dict]] = field(default_factory=dict)
    unmatched: dict[str, list[str]] = field(default_factory=dict)  # level: published areas with no boundary

    def has(self, level: str) -> bool:
        return f"geo_{level}" in self.datasets


def maps(areas: dict[str, dict[str, str]]) -> Maps:
    """Boundaries for each level in `areas` ({level: {area_code: area_name}}) that can be drawn."""
    result = Maps()
    wards = _features("leeds_wards2024_from_lsoa11.geojson", "WD24CD", "WD24NM")
    if "msoa11" in areas:
        result.datasets["geo_msoa11"] = _features("leeds_msoa11.geojson", "MSOA11CD", "MSOA11NM")
        known = {f["properties"]["code"] for f in result.datasets["geo_msoa11"]}
        result.unmatched["msoa11"] = sorted(n for c, n in areas["msoa11"].items() if c not in known)
    if "ward" in areas:
        by_name = {_name(n): c for c, n in areas["ward"].items()}
        matched = []
        for feature in wards:
            code = by_name.get(_name(feature["properties"]["name"]))
            matched.append({**feature, "properties": {**feature["properties"], "code": code}})
        result.datasets["geo_ward"] = matched
        drawn = {f["properties"]["code"] for f in matched}
        result.unmatched["ward"] = sorted(n for c, n in areas["ward"].items() if c not in drawn)
    for level in ("icb", "sub_icb", "city"):
        if len(areas.get(level, {})) == 1:
            (code,) = areas[level]
            result.datasets[f"geo_{level}"] = [
                {**f, "properties": {"code": code, "name": f["properties"]["name"] + " (ward)"}}
                for f in wards
            ]
    return result
