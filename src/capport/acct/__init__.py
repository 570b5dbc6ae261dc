"""Accounting records: who used the network, when, how long, how much, how it ended."""

from capport.acct.records import AccountingRecord, parse_time, render_csv

__all__ = ["AccountingRecord", "parse_time", "render_csv"]
