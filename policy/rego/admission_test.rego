package sluice.admission_test

import rego.v1

import data.sluice.admission

base := {
	"job": {
		"kind": "dev",
		"image": {"name": "python", "digest": "sha256:aaaa"},
		"code_digest": "sha256:cccc",
		"runtime": "runc",
		"limits": {"memory_bytes": 1073741824, "cpus": 1, "timeout": 60000000000},
	},
	"scenario": {"id": "scn_1", "state": "active", "tenant_id": "tnt_a"},
	"submitter": {"id": "usr_1", "role": "scientist", "tenant_id": "tnt_a"},
	"platform": {
		"allowed_images": ["python"],
		"runtimes": ["runc"],
		"max_limits": {"memory_bytes": 17179869184, "cpus": 8, "timeout": 86400000000000},
	},
	"history": {"dev_succeeded": []},
}

codes(inp) := {r.code | some r in res.reasons} if {
	res := admission.result with input as inp
}

test_dev_job_admitted if {
	admission.result.allow with input as base
	count(admission.result.reasons) == 0 with input as base
}

test_image_by_digest_admitted if {
	inp := json.patch(base, [{"op": "replace", "path": "/platform/allowed_images", "value": ["sha256:aaaa"]}])
	admission.allow with input as inp
}

test_image_not_allowed if {
	inp := json.patch(base, [{"op": "replace", "path": "/job/image/name", "value": "busybox"}])
	not admission.allow with input as inp
	codes(inp) == {"image_not_allowed"}
}

test_unimported_image if {
	inp := json.patch(base, [{"op": "replace", "path": "/job/image/digest", "value": ""}])
	"image_unpinned" in codes(inp)
}

test_limit_above_maximum if {
	inp := json.patch(base, [{"op": "replace", "path": "/job/limits/cpus", "value": 9}])
	codes(inp) == {"limit_exceeded"}
}

test_suspended_scenario if {
	inp := json.patch(base, [{"op": "replace", "path": "/scenario/state", "value": "suspended"}])
	codes(inp) == {"scenario_not_active"}
}

test_other_tenant if {
	inp := json.patch(base, [{"op": "replace", "path": "/scenario/tenant_id", "value": "tnt_b"}])
	"wrong_tenant" in codes(inp)
}

test_gvisor_needs_the_runtime if {
	inp := json.patch(base, [{"op": "replace", "path": "/job/runtime", "value": "gvisor"}])
	codes(inp) == {"runtime_not_allowed"}
}

test_prod_needs_dev if {
	inp := json.patch(base, [{"op": "replace", "path": "/job/kind", "value": "prod"}])
	codes(inp) == {"prod_needs_dev_run"}
}

test_prod_after_dev if {
	inp := json.patch(base, [
		{"op": "replace", "path": "/job/kind", "value": "prod"},
		{"op": "replace", "path": "/history/dev_succeeded", "value": ["sha256:cccc"]},
	])
	admission.allow with input as inp
}

test_prod_after_other_code_in_dev if {
	inp := json.patch(base, [
		{"op": "replace", "path": "/job/kind", "value": "prod"},
		{"op": "replace", "path": "/history/dev_succeeded", "value": ["sha256:dddd"]},
	])
	codes(inp) == {"prod_needs_dev_run"}
}

test_empty_input_denied if {
	not admission.allow with input as {}
	{"scenario_not_active", "not_a_scientist", "image_not_allowed", "image_unpinned", "code_unpinned", "kind", "runtime_not_allowed"} == codes({}) - {"wrong_tenant"}
}

test_limit_without_maximum if {
	inp := json.patch(base, [{"op": "add", "path": "/job/limits/gpus", "value": 1}])
	codes(inp) == {"limit_unbounded"}
}
