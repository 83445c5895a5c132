# METADATA
# title: Sluice egress decision
# description: >-
#   Decides allow, review or deny for one output product from the evidence the
#   egress detectors computed against the raw source (docs/policy-input.md).
#   Thresholds live in data.sluice.thresholds; a scenario may tighten them
#   (input.scenario.thresholds), never loosen them.
package sluice.egress

import rego.v1

# Thresholds where a higher value is stricter, and where a lower one is.
stricter_higher := {"min_group_size", "min_cell_count", "k_anonymity", "l_diversity", "differencing_min", "p_percent", "review_approvals_row_level"}

stricter_lower := {"max_file_bytes", "max_rows", "nk_k"}

# thresholds are the platform's, tightened by the scenario's.
thresholds[name] := tightened(name, base) if some name, base in data.sluice.thresholds

tightened(name, base) := v if {
	s := input.scenario.thresholds[name]
	is_number(s)
	name in stricter_higher
	v := max({base, s})
} else := v if {
	s := input.scenario.thresholds[name]
	is_number(s)
	name in stricter_lower
	v := min({base, s})
} else := true if {
	is_boolean(base)
	input.scenario.thresholds[name] == true
} else := base

# Findings that leave no room for judgement: the product carries raw or
# reversible identifiers, or could not be read.
always_deny := {"raw_value", "encoded_value", "pii_pattern", "linkable_pseudonym", "parse_error", "extreme", "affine_transform", "dominance"}

deny contains reason(f) if {
	some f in input.findings
	f.detector in always_deny
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "group_size"
	f.value < thresholds.min_group_size
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "small_cell"
	f.value < thresholds.min_cell_count
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "k_anonymity"
	f.value < thresholds.k_anonymity
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "l_diversity"
	f.value < thresholds.l_diversity
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "differencing"
	f.value < thresholds.differencing_min
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "file_type"
	f.kind in {"binary", "unknown", "archive"}
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "file_size"
	f.value > thresholds.max_file_bytes
}

deny contains reason(f) if {
	some f in input.findings
	f.detector == "row_limit"
	f.value > thresholds.max_rows
}

review contains reason(f) if {
	some f in input.findings
	f.detector == "zero_cell"
	thresholds.zeros_disclosive
}

review contains reason(f) if {
	some f in input.findings
	f.detector == "file_type"
	f.kind in {"image", "model"}
}

# Row-level products always go to people, and to two of them.
review contains reason(f) if {
	some f in input.findings
	f.detector == "row_level"
}

row_level if {
	some f in input.findings
	f.detector == "row_level"
}

default decision := "allow"

decision := "deny" if count(deny) > 0

decision := "review" if {
	count(deny) == 0
	count(review) > 0
}

default approvals := 0

approvals := thresholds.review_approvals_row_level if {
	decision == "review"
	row_level
}

approvals := 1 if {
	decision == "review"
	not row_level
}

reasons := sort([r | some r in deny]) if decision == "deny"

reasons := sort([r | some r in review]) if decision == "review"

reasons := [] if decision == "allow"

result := {"decision": decision, "reasons": reasons, "approvals": approvals}

reason(f) := {"code": f.detector, "message": f.message}
