"""Write a synthetic extract set: one file per feed in its provider's style, plus ground truth.

People are generated for the whole city at once (small arrays); activity is generated and written in
fixed-size slices of people, so memory stays flat and the output does not depend on the machine.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ldm.synthetic import activity, deaths, mortality, noise, reference
from ldm.synthetic.config import FEEDS, SampleConfig
from ldm.synthetic.formats import FORMATS, FeedFormat
from ldm.synthetic.population import People, make_people

SLICE = 20_000  # people per slice; fixed so that a seed always gives the same bytes
CODE_COLUMN = {
    "gp_events": "code",
    "apc_spells": "primary_diagnosis",
    "ae_attendances": "chief_complaint",
    "deaths": "underlying_cause",
}
UNKNOWN_CODE = {
    "gp_events": "123456780",
    "apc_spells": "U999",
    "ae_attendances": "22253009",
    "deaths": "U999",
}
TRUTH_FLAGS = (
    "nhs_fault",
    "dob_typo",
    "stale_postcode",
    "messy_text",
    "name_variant",
    "duplicated",
    "malformed",
)


@dataclass
class Summary:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def registrations(people: People, index: np.ndarray) -> dict[str, np.ndarray]:
    """Current registration of each Leeds person, and the earlier one for those who changed practice."""
    index = index[~people.out_of_area[index]]
    changed = index[~np.isnat(people.practice_changed_on[index])]
    current_start = np.where(
        np.isnat(people.practice_changed_on[index]),
        people.registered_on[index],
        people.practice_changed_on[index],
    )
    rows = {
        "person": np.concatenate([changed, index]),
        "date": np.concatenate([people.registered_on[changed], current_start]),
        "practice": np.concatenate([people.previous_practice[changed], people.practice[index]]),
        "deregistration_date": np.concatenate(
            [people.practice_changed_on[changed], people.deregistered_on[index]]
        ),
        "date_of_death": np.concatenate(
            [np.full(len(changed), np.datetime64("NaT", "D")), people.died_on[index]]
        ),
    }
    rows["ethnic_category"] = people.ethnic_category[rows["person"]]
    order = np.lexsort((rows["date"], rows["person"]))
    return {key: values[order] for key, values in rows.items()}


def _as_text(values: np.ndarray, kind: str, fmt: FeedFormat) -> pa.Array:
    if kind == "date":
        return pc.strftime(pa.array(values.astype("datetime64[D]")), format=fmt.date_format)
    if kind == "datetime":
        return pc.strftime(pa.array(values.astype("datetime64[s]")), format=fmt.datetime_format)
    if kind == "sex_code":
        return pa.array(np.where(values == "M", "1", np.where(values == "F", "2", "9")))
    if kind == "number":
        array = pa.array(values, from_pandas=True)
        return array
    return pa.array(values, type=pa.string(), from_pandas=True)


def _impossible_date(date_format: str, years: np.ndarray) -> np.ndarray:
    """The 30th of February of each year, in the feed's date style (a dd/mm/yyyy feed writes the 31st)."""
    day = "31" if date_format.startswith("%d") else "30"
    pattern = date_format.replace("%Y", "{}").replace("%m", "02").replace("%d", day)
    return np.array([pattern.format(year) for year in years.tolist()], dtype=object)


class ExtractWriter:
    """Appends slices of one feed to its file, in the provider's format."""

    def __init__(self, folder: Path, feed: str):
        self.feed = feed
        self.format = FORMATS[feed]
        self.path = folder / self.format.file_name
        self.sink = self.path.open("wb")
        self.sink.write((self.format.delimiter.join(c.name for c in self.format.columns) + "\n").encode())
        self.options = pacsv.WriteOptions(
            include_header=False, delimiter=self.format.delimiter, quoting_style="needed"
        )
        self.rows = 0

    def write(self, records: dict[str, np.ndarray], malformed: np.ndarray | None = None) -> None:
        arrays = {}
        for column in self.format.columns:
            arrays[column.name] = _as_text(records[column.source], column.kind, self.format)
        if malformed is not None and malformed.any():
            self._plant_malformed(records, arrays, malformed)
        table = pa.table(arrays)
        pacsv.write_csv(table, self.sink, self.options)
        self.rows += table.num_rows

    def _plant_malformed(self, records, arrays, malformed) -> None:
        date_column = next(c for c in self.format.columns if c.source in ("date", "arrival"))
        years = records["date"].astype("datetime64[Y]").astype(int) + 1970
        date_text = arrays[date_column.name].to_numpy(zero_copy_only=False).astype(object)
        reason = records["malformed"]
        bad_date = malformed & (reason == "impossible_date")
        date_text[bad_date] = _impossible_date(self.format.date_format, years[bad_date])
        arrays[date_column.name] = pa.array(date_text, type=pa.string())
        code_source = CODE_COLUMN.get(self.feed)
        if code_source:
            name = next(c.name for c in self.format.columns if c.source == code_source)
            codes = arrays[name].to_numpy(zero_copy_only=False).astype(object)
            codes[malformed & (reason == "unknown_code")] = UNKNOWN_CODE[self.feed]
            arrays[name] = pa.array(codes, type=pa.string())

    def close(self) -> None:
        self.sink.close()


def _plant_row_faults(rng, feed: str, records: dict, truth: dict, config: SampleConfig):
    """Malformed rows and duplicated rows, recorded in the truth."""
    n = len(records["person"])
    malformed = rng.random(n) < config.noise.malformed
    unknown = (rng.random(n) < 0.5) if feed in CODE_COLUMN else np.zeros(n, bool)
    records["malformed"] = np.where(malformed, np.where(unknown, "unknown_code", "impossible_date"), "")
    duplicated = rng.random(n) < config.noise.duplicate_row
    truth["duplicated"] = duplicated
    truth["malformed"] = records["malformed"]
    repeat = np.repeat(np.arange(n), 1 + duplicated)
    return {key: values[repeat] for key, values in records.items()}, malformed[repeat]


def _truth_table(feed: str, records: dict, truth: dict, people: People) -> pa.Table:
    n = len(records["person"])
    columns = {
        "feed": pa.array(np.full(n, feed)),
        "record_id": pa.array(records["record_id"]),
        "person_key": pa.array(people.person_key[records["person"]]),
    }
    for flag in TRUTH_FLAGS:
        values = truth.get(flag)
        if values is None:
            values = np.full(n, "" if flag in ("nhs_fault", "malformed") else False)
        columns[flag] = pa.array(values)
    return pa.table(columns)


def _people_table(people: People) -> pa.Table:
    geo = reference.geography()
    area = people.area
    columns = {
        "person_key": people.person_key,
        "nhs_number": people.nhs_number.astype(str),
        "forename": people.forename,
        "surname": people.surname,
        "sex": people.sex,
        "date_of_birth": people.date_of_birth,
        "postcode": people.postcode,
        "lsoa11_code": np.where(area >= 0, geo.lsoa11[np.maximum(area, 0)], None),
        "imd_decile": np.where(people.imd_decile > 0, people.imd_decile, None),
        "practice_code": np.where(people.practice != "", people.practice, None),
        "registered_on": people.registered_on,
        "deregistered_on": people.deregistered_on,
        "died_on": people.died_on,
        "mortality_multiplier": people.mortality_multiplier,
        "moved_on": people.moved_on,
        "previous_postcode": np.where(people.previous_postcode != "", people.previous_postcode, None),
        "previous_practice_code": np.where(people.previous_practice != "", people.previous_practice, None),
        "practice_changed_on": people.practice_changed_on,
        "ethnic_category": people.ethnic_category,
        "out_of_area": people.out_of_area,
        "opted_out": people.opted_out,
    }
    for condition, onset in people.conditions.items():
        columns[f"{condition.lower()}_diagnosed_on"] = onset
    for condition, resolved in people.resolved.items():
        columns[f"{condition.lower()}_resolved_on"] = resolved
    return pa.table({name: pa.array(values, from_pandas=True) for name, values in columns.items()})


def write_planted_mortality(truth_dir: Path) -> None:
    """The planted hazards (ldm.synthetic.mortality) and the life expectancy they give, at birth and
    at 65 by sex and IMD decile, computed exactly with a complete single-year life table: what a mart
    estimating life expectancy from the generated deaths should find, within its interval."""
    with (truth_dir / "life_expectancy.csv").open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(("sex", "imd_decile", "start_age", "life_expectancy"))
        for row in mortality.planted_life_expectancy():
            writer.writerow(
                (row["sex"], row["imd_decile"], row["start_age"], f"{row['life_expectancy']:.4f}")
            )
    with (truth_dir / "mortality_hazard.csv").open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(("sex", "imd_decile", "age", "yearly_hazard"))
        for sex in mortality.SEXES:
            for decile in mortality.DECILES:
                for age, value in enumerate(mortality.hazard(sex, decile).tolist()):
                    writer.writerow((sex, decile, age, f"{value:.8g}"))


def generate(config: SampleConfig, out: Path, progress=None) -> Summary:
    """Write extracts to out/extracts and the ground truth to out/ground_truth."""
    started = time.perf_counter()
    extracts, truth_dir = out / "extracts", out / "ground_truth"
    extracts.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    people = make_people(config)
    local_ids = noise.hospital_numbers(people, config.seed)
    writers = {feed: ExtractWriter(extracts, feed) for feed in FEEDS if feed != "opt_out"}
    truth_schema = _truth_table(
        "x", {"person": np.zeros(0, int), "record_id": np.zeros(0, np.int64)}, {}, people
    ).schema
    truth_writer = pq.ParquetWriter(truth_dir / "records.parquet", truth_schema)
    next_id = dict.fromkeys(writers, 1)
    builders = {
        "gp_registrations": lambda rng, p, idx, c: registrations(p, idx),
        **activity.ACTIVITY,
        "deaths": deaths.deaths,
    }
    try:
        for number, start in enumerate(range(0, len(people), SLICE)):
            index = np.arange(start, min(start + SLICE, len(people)))
            for position, (feed, writer) in enumerate(writers.items()):
                rng = np.random.default_rng([config.seed, 2, number, position])
                records = builders[feed](rng, people, index, config)
                n = len(records["person"])
                records["record_id"] = np.arange(next_id[feed], next_id[feed] + n, dtype=np.int64)
                next_id[feed] += n
                columns, truth = noise.identifiers(rng, feed, records, people, config, local_ids)
                records.update(columns)
                rows, malformed = _plant_row_faults(rng, feed, records, truth, config)
                writer.write(rows, malformed)
                truth_writer.write_table(_truth_table(feed, records, truth, people))
            if progress:
                progress(min(start + SLICE, len(people)), len(people))
    finally:
        for writer in writers.values():
            writer.close()
        truth_writer.close()
    opted = np.sort(people.nhs_number[people.opted_out]).astype(str)
    opt_out = FORMATS["opt_out"]
    with (extracts / opt_out.file_name).open("w", newline="") as sink:
        sink.write(opt_out.columns[0].name + "\n")
        sink.writelines(f"{number}\n" for number in opted.tolist())
    pq.write_table(_people_table(people), truth_dir / "persons.parquet")
    write_planted_mortality(truth_dir)
    summary = Summary(rows={feed: writer.rows for feed, writer in writers.items()})
    summary.rows["opt_out"] = len(opted)
    summary.seconds = time.perf_counter() - started
    return summary
