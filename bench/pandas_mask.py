#!/usr/bin/env python3
"""The prod masking of the residents dataset done the way an analyst would
with pandas: keyed HMAC-SHA256 pseudonyms per value with apply, names dropped,
birth dates to years, district codes to their city prefix, sensitive values
kept. It is the baseline that `make bench` compares `sluice dataset mask` to.

usage: pandas_mask.py SOURCE.csv KEYFILE OUT.csv
"""
import hashlib
import hmac
import sys

import pandas as pd


def main(src, keyfile, out):
    key = bytes.fromhex(open(keyfile).read().strip())
    ids = ["person_id", "phone", "bank_card"]
    df = pd.read_csv(src, dtype={c: str for c in ids + ["district_code"]})

    def pseudonym(v):
        if pd.isna(v):
            return v
        return "psn_" + hmac.new(key, v.upper().encode(), hashlib.sha256).hexdigest()[:24]

    for c in ids:
        df[c] = df[c].apply(pseudonym)
    df = df.drop(columns=["name"])
    df["birth_date"] = pd.to_datetime(df["birth_date"]).dt.year
    df["district_code"] = df["district_code"].str[:4]
    df.to_csv(out, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
