package sluice.egress_test

import rego.v1

import data.sluice.egress

finding(detector, value) := {"detector": detector, "severity": "high", "value": value, "count": 1, "message": sprintf("%s %v", [detector, value])}

test_no_findings_allow if {
	egress.result.decision == "allow" with input as {"findings": []}
	egress.result.approvals == 0 with input as {"findings": []}
}

test_raw_value_denies if {
	egress.decision == "deny" with input as {"findings": [finding("raw_value", 0)]}
}

test_small_group_denies if {
	egress.decision == "deny" with input as {"findings": [finding("group_size", 1)]}
}

test_large_group_allows if {
	egress.decision == "allow" with input as {"findings": [finding("group_size", 12)]}
}

test_scenario_tightens_group_size if {
	inp := {"findings": [finding("group_size", 12)], "scenario": {"thresholds": {"min_group_size": 20}}}
	egress.decision == "deny" with input as inp
	egress.thresholds.min_group_size == 20 with input as inp
}

test_scenario_cannot_loosen if {
	inp := {"findings": [finding("group_size", 5)], "scenario": {"thresholds": {"min_group_size": 2, "max_file_bytes": 99999999999}}}
	egress.decision == "deny" with input as inp
	egress.thresholds.min_group_size == 10 with input as inp
	egress.thresholds.max_file_bytes == 16777216 with input as inp
}

test_zero_cell_review if {
	egress.result.decision == "review" with input as {"findings": [finding("zero_cell", 0)]}
	egress.result.approvals == 1 with input as {"findings": [finding("zero_cell", 0)]}
}

test_row_level_needs_two_reviewers if {
	r := egress.result with input as {"findings": [finding("row_level", 6000)]}
	r.decision == "review"
	r.approvals == 2
}

test_unknown_file_denied_image_reviewed if {
	egress.decision == "deny" with input as {"findings": [object.union(finding("file_type", 0), {"kind": "binary"})]}
	egress.decision == "review" with input as {"findings": [object.union(finding("file_type", 0), {"kind": "image"})]}
}

test_deny_wins_over_review if {
	egress.decision == "deny" with input as {"findings": [finding("row_level", 10), finding("k_anonymity", 1)]}
}

test_reasons_name_the_detector if {
	r := egress.result with input as {"findings": [finding("differencing", 1)]}
	r.reasons == [{"code": "differencing", "message": "differencing 1"}]
}
