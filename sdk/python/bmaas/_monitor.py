"""The monitoring calls of bmaas.Client: feedback on logged requests, a
deployment's monitoring windows, datasets made of logged requests, and
alert rules and alerts, as `bmaas deploy feedback|monitor`,
`bmaas dataset create-from-payloads` and `bmaas alert` make them."""

import datetime

from ._http import quote

__all__ = ["MonitorCalls"]

_COMPARISONS = {">": "COMPARISON_GREATER", ">=": "COMPARISON_GREATER_OR_EQUAL",
                "<": "COMPARISON_LESS", "<=": "COMPARISON_LESS_OR_EQUAL"}


def _ago(seconds):
    """The RFC 3339 time of so many seconds ago."""
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_when(when):
    """Reads "SERIES[{column}] OP THRESHOLD" (drift_score{petal_length_cm} > 0.3)
    into the rule's series, column, comparison and threshold."""
    parts = str(when).split()
    if len(parts) != 3:
        raise ValueError("when %r: expected SERIES OP THRESHOLD, e.g. 'drift_share > 0.3'" % when)
    series, op, threshold = parts
    column = ""
    if "{" in series:
        series, _, rest = series.partition("{")
        if not rest.endswith("}") or len(rest) < 2:
            raise ValueError("when %r: a column goes in braces, e.g. drift_score{petal_length_cm}" % when)
        column = rest[:-1]
    if op not in _COMPARISONS:
        raise ValueError("when %r: the operator is one of >, >=, <, <=" % when)
    try:
        value = float(threshold)
    except ValueError:
        raise ValueError("when %r: %r is not a number" % (when, threshold)) from None
    return {"series": series, "column": column, "comparison": _COMPARISONS[op], "threshold": value}


class MonitorCalls:
    """Mixed into Client; uses its _do and _list."""

    def feedback(self, deployment, request_id, labels=None, values=None):
        """Records the ground truth of one logged request: labels (a
        classifier) or values (a regressor), one per row of the request.
        Returns the rows recorded."""
        return self.feedback_many(deployment, [{"request_id": request_id, "labels": labels, "values": values}])

    def feedback_many(self, deployment, items):
        """Records the feedback of several requests at once, all or none:
        items are {"request_id", "labels" or "values"}."""
        body = []
        for i, it in enumerate(items):
            labels, values = it.get("labels"), it.get("values")
            if not it.get("request_id"):
                raise ValueError("feedback[%d].request_id is required" % i)
            if bool(labels) == bool(values):
                raise ValueError("feedback[%d]: give labels (a classifier) or values (a regressor)" % i)
            f = {"request_id": it["request_id"]}
            if labels:
                f["labels"] = [str(v) for v in labels]
            else:
                f["values"] = [float(v) for v in values]
            body.append(f)
        resp = self._do("POST", "/v1/deployments/%s/feedback" % quote(deployment), {"feedback": body}) or {}
        return int(resp.get("rows", 0))

    def monitoring(self, deployment, since_seconds=3600):
        """The deployment's monitoring windows of the last since_seconds,
        oldest first: traffic, errors, latency, drift per column, data
        quality, live performance."""
        return self._list("/v1/deployments/%s/monitoring" % quote(deployment), "windows",
                          {"since": _ago(since_seconds), "page_size": 1000})

    def dataset_from_payloads(self, name, deployment, since_seconds=86400, until_seconds=0, include_unlabelled=False):
        """Adds a version to dataset name made of the deployment's logged
        requests between since_seconds and until_seconds ago, joined with
        their feedback; returns {"dataset", "version", "requests", "rows",
        "labelled_rows"}."""
        body = {"dataset": name, "since": _ago(since_seconds), "until": _ago(until_seconds),
                "include_unlabelled": bool(include_unlabelled)}
        return self._do("POST", "/v1/deployments/%s/payloads:toDataset" % quote(deployment), body)

    # Alert rules and alerts.

    def create_alert_rule(self, name, deployment, when, for_seconds=0, labels=None, annotations=None,
                          retrain=False, retrain_dataset=None, cool_down_seconds=None, retrain_from_payloads_seconds=None):
        """Creates a rule that fires when `when` ("drifted_columns >= 1")
        holds for for_seconds; with retrain, the deployed version's training
        job runs again (on retrain_dataset, or on a dataset of the last
        retrain_from_payloads_seconds of logged requests with feedback)."""
        rule = dict(parse_when(when), name=name, deployment=deployment, **{"for": "%gs" % for_seconds})
        if labels:
            rule["labels"] = dict(labels)
        if annotations:
            rule["annotations"] = dict(annotations)
        if retrain:
            action = {"kind": "retrain"}
            if retrain_dataset:
                action["dataset"] = retrain_dataset
            if cool_down_seconds is not None:
                action["cool_down"] = "%gs" % cool_down_seconds
            if retrain_from_payloads_seconds:
                action["payload_window"] = "%gs" % retrain_from_payloads_seconds
            rule["action"] = action
        elif retrain_dataset or cool_down_seconds is not None or retrain_from_payloads_seconds:
            raise ValueError("retrain_dataset, cool_down_seconds and retrain_from_payloads_seconds go with retrain=True")
        return self._do("POST", "/v1/alert-rules", rule)

    def get_alert_rule(self, name):
        return self._do("GET", "/v1/alert-rules/" + quote(name))

    def list_alert_rules(self):
        return self._list("/v1/alert-rules", "rules")

    def delete_alert_rule(self, name):
        self._do("DELETE", "/v1/alert-rules/" + quote(name))

    def list_alerts(self, rule=None):
        """The alerts, newest first (of one rule when given)."""
        return self._list("/v1/alerts", "alerts", {"rule": rule})

    def get_alert(self, alert_id):
        """An alert with its chain of links (notifications, job, version,
        evaluation, decision, rollout)."""
        return self._do("GET", "/v1/alerts/" + quote(alert_id))
