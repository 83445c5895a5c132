# METADATA
# title: Sluice job admission
# description: >-
#   Decides whether a submitted job may run (docs/jobs.md): its image is on
#   the platform's allow-list, its limits are within the platform's
#   maximums, its scenario is active and belongs to the submitter's tenant,
#   and a prod job runs code (by digest) that already ran successfully in
#   dev under the same scenario. Every failed condition is a reason; the
#   job is admitted only when there is none.
package sluice.admission

import rego.v1

# Every condition is written so that a missing field denies: "not x == y"
# holds when x is undefined, where "x != y" would not; a function's
# arguments are read with defaults (object.get), since an undefined
# argument would leave the whole rule undefined.

deny contains {"code": "scenario_not_active", "message": sprintf("scenario %s is %s: jobs run only in an active scenario", [object.get(input, ["scenario", "id"], "?"), object.get(input, ["scenario", "state"], "unknown")])} if {
	not input.scenario.state == "active"
}

deny contains {"code": "wrong_tenant", "message": "the scenario belongs to another tenant"} if {
	not input.submitter.tenant_id == input.scenario.tenant_id
}

deny contains {"code": "not_a_scientist", "message": "only a tenant's data scientist submits jobs"} if {
	not input.submitter.role == "scientist"
}

deny contains {"code": "kind", "message": sprintf("kind %q: a job is dev or prod", [object.get(input, ["job", "kind"], "")])} if {
	not object.get(input, ["job", "kind"], "") in {"dev", "prod"}
}

image_allowed if {
	some a in input.platform.allowed_images
	a in {input.job.image.name, input.job.image.digest}
}

deny contains {"code": "image_not_allowed", "message": sprintf("image %s (%s) is not on the platform's allow-list", [object.get(input, ["job", "image", "name"], "?"), object.get(input, ["job", "image", "digest"], "?")])} if {
	not image_allowed
}

deny contains {"code": "image_unpinned", "message": sprintf("image %s has no digest: it is not imported", [object.get(input, ["job", "image", "name"], "?")])} if {
	not startswith(object.get(input, ["job", "image", "digest"], ""), "sha256:")
}

deny contains {"code": "code_unpinned", "message": "the code bundle has no sha256 digest"} if {
	not startswith(object.get(input, ["job", "code_digest"], ""), "sha256:")
}

deny contains {"code": "limit_exceeded", "message": sprintf("%s %v is above the platform maximum %v", [name, v, input.platform.max_limits[name]])} if {
	some name, v in input.job.limits
	v > input.platform.max_limits[name]
}

deny contains {"code": "limit_unbounded", "message": sprintf("%s has no platform maximum", [name])} if {
	some name, _ in input.job.limits
	not input.platform.max_limits[name]
}

deny contains {"code": "runtime_not_allowed", "message": sprintf("runtime %q is not one the platform runs", [object.get(input, ["job", "runtime"], "")])} if {
	not object.get(input, ["job", "runtime"], "") in {r | some r in object.get(input, ["platform", "runtimes"], [])}
}

# Prod runs over the full masked data: only code already seen to run on the
# dev extract gets there.
deny contains {"code": "prod_needs_dev_run", "message": sprintf("code %s has not run successfully in dev under this scenario: run it in dev first", [object.get(input, ["job", "code_digest"], "?")])} if {
	input.job.kind == "prod"
	not object.get(input, ["job", "code_digest"], "") in {d | some d in object.get(input, ["history", "dev_succeeded"], [])}
}

default allow := false

allow if count(deny) == 0

result := {"allow": allow, "reasons": sort([r | some r in deny])}
