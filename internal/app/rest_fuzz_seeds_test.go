package app

import "strings"

// restSeed is one FuzzREST input; mode 0 is Content-Type:
// application/json, a Content-Length and the token.
type restSeed struct {
	route, param, query, body string
	mode                      uint8
}

// restSeeds: valid bodies of several routes, then junk every decoder
// must refuse with a 4xx. Findings live in testdata/fuzz/FuzzREST.
var restSeeds = []restSeed{
	{route: "POST /v1/models", body: `{"name":"iris","description":"flowers","task_type":"TASK_TYPE_MULTICLASS_CLASSIFICATION","labels":{"team":"a"}}`},
	{route: "PATCH /v1/models/{model.name}", param: "iris", query: "update_mask=description", body: `{"description":"d","etag":"1"}`},
	{route: "POST /v1/jobs", body: `{"name":"train","model":"iris","builtin":{"algorithm":"logistic_regression","dataset":"iris","target_column":"target","hyperparameters":{"c":"1"}},"resources":{"cpu_millis":"1000","memory_bytes":"1048576"},"timeout_seconds":"60"}`},
	{route: "POST /v1/experiments", body: `{"name":"hpo","model":"iris","searcher":"random","metric":"validation_accuracy","mode":"max","max_trials":4,"params":[{"name":"c","type":"PARAM_TYPE_LOG_UNIFORM","low":0.01,"high":10}],"template":{"algorithm":"logistic_regression","dataset":"iris"}}`},
	{route: "POST /v1/deployments", body: `{"name":"iris","model":"iris","min_replicas":1,"max_replicas":3,"targetConcurrency":8,"autoscaling":true}`},
	{route: "POST /v1/evaluations", body: `{"model":"iris","version":"3","dataset":"iris"}`},
	{route: "PUT /v1/models/{policy.model}/evaluation-policy", param: "iris", body: `{"datasets":[{"dataset":"iris","version":"1"}],"promotion":{"target_alias":"prod","primary_metric":"test_accuracy","enabled":true}}`},
	{route: "POST /v1/models/{model}/versions:import", param: "iris", body: `{"source_path":"/data/m.onnx","spec":{"format":"MODEL_FORMAT_ONNX"}}`},
	{route: "PUT /v1/models/{model}/aliases/{alias}", param: "iris\nprod", body: `{"version":"2"}`},
	{route: "POST /v1/deployments/{name}:rollback", param: "iris", body: `{}`},
	{route: "POST /v1/jobs/{id}:cancel", param: "01J0000000000000000000000", body: ``},
	{route: "GET /v1/jobs/{id}/logs", param: "01J0000000000000000000000", query: "follow=true&tail=100"},
	{route: "GET /v1/jobs", query: "page_size=10&page_token=abc&state=JOB_STATE_RUNNING"},
	{route: "GET /v1/models/{model}/versions/{version}", param: "iris\nlatest"},
	{route: "DELETE /v1/models/{model}/versions/{version}", param: "iris\n-1"},
	{route: "POST /v2/models/{name}/infer", param: "iris", body: `{"id":"1","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`},
	{route: "POST /v2/models/{name}/versions/{version}/infer", param: "iris\n2", body: `{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","data":["a","b"]}],"outputs":[{"name":"y"}]}`, mode: 1},
	{route: "POST /v1/models/{name}:predict", param: "iris", body: `{"instances":[[5.1,3.5,1.4,0.2]]}`},
	{route: "PUT /v1/models/{model}/artifact", param: "iris", query: "format=onnx&filename=m.onnx", body: "\x08\x01binary", mode: 4},
	{route: "PUT /v1/datasets/{dataset}/csv", param: "iris", query: "filename=iris.csv", body: "a,b\n1,2\n", mode: 4 | modeChunked},
	{route: "GET /v1/models", mode: modeNoToken},

	// Junk.
	{route: "POST /v1/models", body: "{\"name\":\"\xff\xfe\"}"},
	{route: "POST /v1/models", body: strings.Repeat("[", 3000)},
	{route: "POST /v1/jobs", body: `{"builtin":{"hyperparameters":` + strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat(`}`, 600) + `}}`},
	{route: "POST /v1/experiments", body: `{"max_trials":1e400,"parallelism":99999999999999999999,"seed":"-9223372036854775809"}`},
	{route: "POST /v1/deployments", body: "{\"name\":\"a\x00b\"}\x00"},
	{route: "POST /v1/deployments", body: `{"min_replicas":"three","autoscaling":"yes","resources":[]}`},
	{route: "POST /v1/models", body: `{"name":"a","name":"b"}`},
	{route: "POST /v1/models", body: `{"name":"a","Name":"b","name":null}`},
	{route: "POST /v1/models", body: `{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1s"}`},
	{route: "POST /v1/evaluations", body: `{"metrics":{"@type":"x","a":"NaN","b":"Infinity"}}`},
	{route: "POST /v1/models", body: `{"name":"a"}`, mode: 3},
	{route: "POST /v1/models", body: `{"name":"a"}`, mode: 6},
	{route: "POST /v1/models", body: strings.Repeat(" ", 5000), mode: modeChunked},
	{route: "POST /v2/models/{name}/infer", param: "iris", body: `{"inputs":[{"name":"x","shape":[-1,99999999999],"datatype":"FP32","data":[1]}]}`},
	{route: "POST /v2/models/{name}/infer", param: "iris", body: `{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1e308]}],"parameters":{"@type":1}}`},
	{route: "POST /v2/models/{name}/infer", param: "iris", body: "{\"inputs\":[{\"name\":\"\xc3\x28\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"\x00\"]}]}"},
	{route: "POST /v1/models/{name}:predict", param: "iris", body: `{"instances":[[1,"x"],[2]]}`},
	{route: "GET /v1/models/{model}/versions/{version}", param: "../../v1/jobs\n99999999999999999999999"},
	{route: "GET /v1/jobs/{id}", param: "a%2Fb:cancel", query: "x=%ff&page_size=-1"},
	{route: "GET /v1/jobs", query: "page_size=abc&state=42&state=JOB_STATE_NOPE&unknown.field=1"},
	{route: "DELETE /v1/models/{name}", param: "\xff"},
}
