// Package alerting keeps alert rules over the deployments' monitoring
// series and, on the evaluator's leader, evaluates them.
//
// A rule (etcd, /bmaas/v1/alert-rules/<name>) compares one series of a
// deployment's latest window with a threshold. It goes inactive, pending
// (the condition holds, for less than its `for`), firing, and back to
// inactive, as Prometheus's rules do; each episode that fires is an Alert
// (/bmaas/v1/alerts/<id>) that ends resolved. Notification is
// Alertmanager's job: a firing alert is posted to every configured
// Alertmanager (API v2) and again every Resend with an endsAt a few
// resends ahead, a resolved one with endsAt now; webhooks and the NATS
// subject bmaas.alert.<rule>.firing|resolved get each change once. A
// rule's action runs when it fires, at most once per cool-down, and the
// alert records each step it led to as a link (Deps.Act, Deps.Follow).
package alerting
