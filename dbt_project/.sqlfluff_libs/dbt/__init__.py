"""Stand-ins for dbt's cross-database macros, for sqlfluff's jinja templater only (never imported by dbt)."""


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"({from_date_or_timestamp} + interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def type_string():
    return "varchar"
