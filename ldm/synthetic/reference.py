"""Reference tables the generator draws from, loaded once into numpy arrays."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

import numpy as np

from ldm.reference import reference_path

CONDITIONS = ("DM", "HYP", "AST", "COPD", "CHD", "AF", "HF", "CKD", "DEM", "DEP")
SNOMED_CODELIST = {
    "DM": "dm_cod",
    "HYP": "hyp_cod",
    "AST": "ast_cod",
    "COPD": "copd_cod",
    "CHD": "chd_cod",
    "AF": "afib_cod",
    "HF": "hf_cod",
    "CKD": "ckd_cod",
    "DEM": "dem_cod",
    "DEP": "depr_cod",
}
ICD10_CODELIST = {
    "DM": "type_2_diabetes",
    "HYP": None,  # no secondary-care list shipped; hypertension is coded as I10
    "AST": "asthma",
    "COPD": "copd_admission",
    "CHD": "coronary_heart_disease",
    "AF": "atrial_fibrillation_and_flutter",
    "HF": "heart_failure",
    "CKD": "chronic_kidney_disease",
    "DEM": "dementia",
    "DEP": "depression",
}


def _rows(name: str) -> list[dict[str, str]]:
    with reference_path(name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Geography:
    """Leeds LSOA 2011 areas with their population, IMD decile and postcodes."""

    lsoa11: np.ndarray  # codes, one per area
    imd_decile: np.ndarray  # 1 = most deprived
    population: np.ndarray  # (areas, 91) persons by single year of age 0..90+
    postcodes: np.ndarray  # every Leeds postcode, grouped by area
    postcode_ward: np.ndarray  # ward code of each postcode
    postcode_lsoa21: np.ndarray
    area_start: np.ndarray  # postcodes of area i are postcodes[area_start[i]:area_end[i]]
    area_end: np.ndarray


@dataclass(frozen=True)
class Practices:
    """Active Leeds GP practices with their list size and ward."""

    code: np.ndarray
    ward: np.ndarray
    list_size: np.ndarray


@cache
def geography() -> Geography:
    population = _rows("leeds_mid2020_pop_lsoa11_syoa_persons.csv")
    imd = {row["lsoa11_code"]: int(row["imd_decile"]) for row in _rows("imd2019_leeds_lsoa11.csv")}
    lsoa11 = np.array([row["lsoa11_code"] for row in population])
    ages = [str(age) for age in range(90)] + ["90+"]
    counts = np.array([[float(row[age]) for age in ages] for row in population])

    parents: dict[str, list[str]] = {}  # LSOA 2021 -> the LSOA 2011 areas it came from
    for row in _rows("leeds_lsoa11_to_lsoa21_lookup.csv"):
        parents.setdefault(row["lsoa21_code"], []).append(row["lsoa11_code"])
    by_area: dict[str, list[tuple[str, str, str]]] = {code: [] for code in lsoa11}
    for row in _rows("leeds_postcode_ward_lsoa21.csv"):
        for parent in parents.get(row["lsoa21_code"], []):
            if parent in by_area:
                by_area[parent].append((row["pcds"], row["ward_code"], row["lsoa21_code"]))
    flat = [entry for code in lsoa11 for entry in sorted(by_area[code])]
    sizes = np.array([len(by_area[code]) for code in lsoa11])
    if (sizes == 0).any():
        raise ValueError("every LSOA in the population table needs at least one postcode")
    end = np.cumsum(sizes)
    return Geography(
        lsoa11=lsoa11,
        imd_decile=np.array([imd[code] for code in lsoa11]),
        population=counts,
        postcodes=np.array([entry[0] for entry in flat]),
        postcode_ward=np.array([entry[1] for entry in flat]),
        postcode_lsoa21=np.array([entry[2] for entry in flat]),
        area_start=end - sizes,
        area_end=end,
    )


@cache
def practices() -> Practices:
    sizes = {
        row["PRACTICE_CODE"]: int(row["TOTAL"])
        for row in _rows("qof1920_leeds_practice_list_sizes_by_age.csv")
    }
    active = [
        row
        for row in _rows("leeds_practices_2023_pcn_imd.csv")
        if row["status_code"] == "A" and row["prescribing_setting"] == "4" and row["org_code"] in sizes
    ]
    active.sort(key=lambda row: row["org_code"])
    return Practices(
        code=np.array([row["org_code"] for row in active]),
        ward=np.array([row["ward_code"] for row in active]),
        list_size=np.array([sizes[row["org_code"]] for row in active], dtype=float),
    )


@cache
def qof_prevalence_by_decile() -> dict[str, np.ndarray]:
    """England QOF 2019/20 prevalence by IMD decile (index 0 = decile 1) for each condition."""
    table = {condition: np.zeros(10) for condition in CONDITIONS}
    for row in _rows("qof1920_england_by_imd_decile.csv"):
        if row["group_code"] in table and row["imd_overall"].isdigit():
            table[row["group_code"]][int(row["imd_overall"]) - 1] = float(row["prevalence"])
    return table


@cache
def _snomed_list(condition: str) -> frozenset[str]:
    return frozenset(row["code"] for row in _rows(f"codelists/snomed/{SNOMED_CODELIST[condition]}.csv"))


@cache
def snomed_codes(condition: str) -> np.ndarray:
    """The condition's QOF codes, less those that also belong to another condition's cluster (a few
    asthma/COPD, hypertension/CKD and dementia/depression codes), so a planted code means one thing."""
    others = set().union(*(_snomed_list(other) for other in CONDITIONS if other != condition))
    return np.array(sorted(_snomed_list(condition) - others))


@cache
def icd10_codes(condition: str) -> np.ndarray:
    listname = ICD10_CODELIST[condition]
    if listname is None:
        return np.array(["I10"])
    dictionary = icd10_dictionary()
    codes = [row["code"] for row in _rows(f"codelists/icd10/{listname}.csv")]
    return np.array(sorted(code for code in codes if code in dictionary and len(code) == 4) or codes)


@cache
def icd10_dictionary() -> frozenset[str]:
    return frozenset(row["code"] for row in _rows("icd10_codes.csv"))
