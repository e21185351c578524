// Package keyowners is the table of bmaas's etcd key layouts and the one
// package that owns each: the only package that builds or parses that
// layout's keys. A layout two services share has an owner package of its
// own that both import (services/scheduler/schedkeys,
// services/traineragent/endpointkeys, pkg/membership, pkg/election); a
// layout only its service reads stays in that service.
//
// The package's test scans every Go file of the repository and fails when
// a file outside a layout's owner
//
//   - holds a string literal with the layout's prefix (/bmaas/v1/<kind>),
//   - calls store.Key with the layout's kind, or
//   - builds or parses keys by hand from an owner package's exported
//     names: a + on them, or a call into package strings with them.
//
// A new layout is added to Layouts with its owner.
package keyowners

// Root is the root of every key (pkg/store.Prefix), owned by pkg/store.
const Root = "/bmaas/v1/"

// Layouts maps each kind (the first segment after Root) to the directory,
// relative to the repository root, of the package that owns it.
var Layouts = map[string]string{
	"": "pkg/store",

	"jobs":        "services/scheduler/schedkeys",
	"nodes":       "services/scheduler/schedkeys",
	"assignments": "services/scheduler/schedkeys",
	"tasks":       "services/scheduler/schedkeys",

	"endpoints": "services/traineragent/endpointkeys",

	"members": "pkg/membership",
	"leader":  "pkg/election",

	"deployments": "services/gateway",
	"runtimes":    "services/gateway",

	"models":           "services/registry",
	"versions":         "services/registry",
	"datasets":         "services/registry",
	"dataset-versions": "services/registry",
	"checkpoints":      "services/registry",
	"bundles":          "services/registry",

	"auto-evaluations":    "services/evaluator",
	"evaluations":         "services/evaluator",
	"evaluation-policies": "services/evaluator",
	"decisions":           "services/evaluator",
	"experiments":         "services/evaluator",
	"experiment-states":   "services/evaluator",
	"trials":              "services/evaluator",
	"alert-rules":         "services/evaluator/alerting",
	"alerts":              "services/evaluator/alerting",

	"tokens":   "pkg/iam",
	"projects": "pkg/iam",
}

// LayoutPackages are the packages whose exported names are key prefixes
// and builders of a layout they own (by import path below the module).
// Outside its own directory, nothing concatenates them or hands them to
// package strings: their builders and parsers do that.
var LayoutPackages = []string{
	"services/scheduler/schedkeys",
	"services/traineragent/endpointkeys",
	"pkg/membership",
	"pkg/election",
	"pkg/iam",
}
