"""Stand-ins for dbt's cross-database macros, for sqlfluff's jinja templater only (never imported by dbt)."""


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"({from_date_or_timestamp} + interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def type_string():
    return "varchar"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def generate_series(upper_bound):
    return f"select range + 1 as generated_number from range({upper_bound})"
