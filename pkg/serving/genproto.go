package serving

// The ONNX runtime's dependencies (through gorgonia) require the old
// monolithic google.golang.org/genproto, whose googleapis/rpc and
// googleapis/api packages now live in their own modules: with the old
// version both would provide the same import paths. Importing one package
// of a current genproto keeps `go mod tidy` from dropping the requirement
// that selects the current version.
import _ "google.golang.org/genproto/protobuf/field_mask"
