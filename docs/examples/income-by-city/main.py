"""Demo analysis: mean monthly income by city over the masked residents.

Reads the masked dataset the sandbox offers at /data/in/residents/ and writes
one aggregate to /data/out, the only way out of the sandbox.
"""
import json

import pandas as pd

manifest = json.load(open("/data/in/manifest.json"))
residents = manifest["datasets"][0]
print(f"input: {residents['name']}, {residents['rows']} rows, masking: {residents.get('masking', {})}")

df = pd.read_csv("/data/in/residents/data.csv", dtype={"district_code": str})
agg = (
    df.groupby("district_code")
    .agg(residents=("monthly_income", "size"), mean_income=("monthly_income", "mean"))
    .round({"mean_income": 0})
    .reset_index()
    .rename(columns={"district_code": "city_code"})
)
agg.to_csv("/data/out/income_by_city.csv", index=False)
print(f"wrote {len(agg)} cities")
